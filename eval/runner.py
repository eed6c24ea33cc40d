"""Run an eval: index the dataset's corpus, ask every case through ``QAService``, score, summarize.

Questions go through :meth:`qa.service.QAService.ask` (the code path the HTTP API uses), with the
case's history for follow-ups; retrieval is scored on :meth:`QAService.search` for the query
``ask`` actually used (``Answer.query``, i.e. after follow-up resolution).

Retrieval is scored twice: at document level on the ranked list of distinct documents (what
BEIR's nDCG@10 and recall@10 mean), and at evidence-span level on the ranked passages (does a
passage that contains the gold quote reach the top k?).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.datasets import KINDS, EvalCase, EvalDataset, verify_evidence
from eval.errors import DatasetError
from index.errors import CiteqaError
from index.pipeline import DocumentIndex, ProgressFactory
from index.settings import Settings
from qa.citations import Citation, quote_is_valid
from qa.service import QAService
from qa.types import Answer, Passage

DEFAULT_K = 10
MAX_PASSAGES = 50  # passages fetched per query to rank documents for doc-level metrics


@dataclass
class CaseResult:
    """How citeqa did on one case (the JSON report keeps one per case)."""

    id: str
    kind: str
    question: str
    query: str = ""
    answerable: bool | None = None
    answer: str = ""
    refused: bool = False
    error: str | None = None
    latency_ms: float | None = None
    correct: bool | None = None  # accepted answer inside the answer text (answerable cases)
    f1: float | None = None
    cited_docs: list[str] = field(default_factory=list)
    citations: int = 0
    citations_on_gold_doc: int = 0
    citations_on_gold_span: int = 0
    cites_gold_evidence: bool | None = None
    quotes_checked: int = 0  # answer citations and see-also citations
    invalid_quotes: list[str] = field(default_factory=list)
    has_conflict: bool = False
    conflict_covered: bool | None = None  # conflict cases: both sides shown and every gold document cited
    ranked_docs: list[str] = field(default_factory=list)  # distinct documents, best first (top k)
    doc_recall: float | None = None
    doc_rr: float | None = None
    span_recall: float | None = None
    span_rr: float | None = None
    ndcg10: float | None = None
    gold_docs_cited: bool | None = None  # cases with >= 2 gold documents: citations name two of them
    true_shown: bool | None = None  # cases with conflicting answers (RGB): an accepted answer appears
    false_alone: bool | None = None  # ... a conflicting answer appears and no accepted one does
    both_shown: bool | None = None  # ... both appear
    factoid: bool = False  # who/what/which/when/where/how many/how much question
    words_before_citation: int | None = None  # answered factoid cases: words before the first [n]
    short_answer: str | None = None  # the answerer's answer phrase (Answer.answer), when it gives one
    answer_span_valid: bool | None = None  # document_text[answer_start:answer_end] == short_answer
    squad_em: float | None = None  # SQuAD 2.0 EM of the phrase (else the reply); abstention right on unanswerable
    squad_f1: float | None = None

    @property
    def judged(self) -> bool:
        """Has gold documents, so retrieval and citations can be scored."""
        return self.doc_recall is not None

    def problems(self) -> list[str]:
        """What went wrong on this case, in words (empty when nothing did)."""
        out = []
        if self.error:
            out.append(f"error: {self.error}")
        if self.answerable is True and self.refused:
            out.append("refused an answerable question")
        elif self.correct is False:
            out.append("no accepted answer in the text")
        if self.answerable is False and not self.refused:
            out.append("answered an unanswerable question")
        if self.citations and self.citations_on_gold_doc < self.citations:
            out.append(f"{self.citations - self.citations_on_gold_doc} citation(s) outside the gold documents")
        if self.cites_gold_evidence is False:
            out.append("cites no gold evidence")
        if self.invalid_quotes:
            out.append(f"{len(self.invalid_quotes)} invalid quote(s)")
        if self.conflict_covered is False:
            out.append("conflict not shown with both sources")
        if self.false_alone:
            out.append("shows only the false (conflicting) answer")
        if self.gold_docs_cited is False:
            out.append("cites fewer than two gold documents")
        if self.answer_span_valid is False:
            out.append("answer phrase is not its document span")
        return out


# index ------------------------------------------------------------------------------------------
@contextmanager
def eval_index(
    dataset: EvalDataset,
    settings: Settings,
    *,
    data_dir: Path | None = None,
    progress: ProgressFactory | None = None,
    embedder: Any | None = None,
) -> Iterator[DocumentIndex]:
    """An index holding exactly the dataset's corpus, in its own collection ``eval-<dataset>``.

    Args:
        dataset: whose documents to index.
        settings: the configuration under test (chunking, retrieval, thresholds).
        data_dir: keep the index there and reuse it next time (unchanged documents are not
            re-embedded); None builds it in a temporary directory removed afterwards.
        progress: progress-bar factory for embedding.
        embedder: an already loaded :class:`index.embedding.Embedder` to share.

    Raises:
        DatasetError: a document failed to index, or gold evidence is not in the indexed text.
    """
    with tempfile.TemporaryDirectory(prefix="citeqa-eval-", ignore_cleanup_errors=True) as tmp:
        where = Path(data_dir) if data_dir is not None else Path(tmp)
        eval_settings = settings.model_copy(update={"data_dir": where, "collection": f"eval-{dataset.slug}"})
        index = DocumentIndex.open(eval_settings, embedder=embedder)
        wanted = {d.id for d in dataset.documents}
        for info in index.list_documents():
            if info.id not in wanted:  # left over from an older version of the corpus
                index.delete(info.id)
        report = index.add_documents(dataset.documents, progress=progress)
        if report.failed:
            first = report.failed[0]
            raise DatasetError(f"{first.source}: {first.reason}")
        check_evidence(dataset.cases, index)
        yield index


def check_evidence(cases: Sequence[EvalCase], index: DocumentIndex) -> None:
    """Raise :class:`DatasetError` when gold evidence names a missing document or a non-verbatim quote."""
    known = {info.id for info in index.list_documents()}
    texts = dict.fromkeys(known, "")  # qrels only need the document to exist
    for doc_id in {e.doc_id for c in cases for e in c.evidence} & known:
        texts[doc_id] = index.get_document(doc_id)[1]
    problems = verify_evidence(cases, texts)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DatasetError(f"bad gold evidence: {problems[0]}{more}")


# running ----------------------------------------------------------------------------------------
def run_eval(
    dataset: EvalDataset,
    service: QAService,
    *,
    k: int = DEFAULT_K,
    progress: ProgressFactory | None = None,
) -> list[CaseResult]:
    """Ask every case and score it.

    Args:
        dataset: the cases (its documents must already be indexed in ``service.index``).
        service: the answering service under test.
        k: cut-off for recall@k (documents and evidence spans).
        progress: progress-bar factory.

    Returns:
        One :class:`CaseResult` per case, in dataset order.
    """
    scorer = _Scorer(service.index)
    _warm_up(service, dataset.cases)
    bar = progress(len(dataset.cases), "asking") if progress else None
    results = []
    try:
        for case in dataset.cases:
            results.append(_run_case(case, service, scorer, k))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return results


def _warm_up(service: QAService, cases: Sequence[EvalCase]) -> None:
    """Ask once untimed: the first query pays for lazy loading, which is not what latency measures."""
    for case in cases[:1]:
        try:
            service.ask(case.question)
        except CiteqaError:
            pass


def _run_case(case: EvalCase, service: QAService, scorer: _Scorer, k: int) -> CaseResult:
    result = CaseResult(id=case.id, kind=case.kind, question=case.question, answerable=case.answerable)
    result.factoid = m.is_factoid(case.question)
    started = time.perf_counter()
    try:
        answer = service.ask(case.question, history=case.history)
    except CiteqaError as exc:
        result.error = str(exc)
        result.refused = True  # no answer was given
        if case.answerable:
            result.correct, result.f1 = False, 0.0
        if case.answerable is not None:
            result.squad_em = result.squad_f1 = 0.0  # an error is neither an answer nor a refusal
        if case.conflicting:
            result.true_shown = result.false_alone = result.both_shown = False
        if len(case.gold_docs) >= 2:
            result.gold_docs_cited = False
        return result
    result.latency_ms = (time.perf_counter() - started) * 1000
    passages = service.search(answer.query, k=max(MAX_PASSAGES, k))
    scorer.score(case, answer, passages, result, k=k)
    return result


class _Scorer:
    """Scores answers against gold data; caches document texts for span and quote checks."""

    def __init__(self, index: DocumentIndex) -> None:
        self.index = index
        self._texts: dict[str, str | None] = {}

    def text(self, doc_id: str) -> str | None:
        if doc_id not in self._texts:
            try:
                self._texts[doc_id] = self.index.get_document(doc_id)[1]
            except CiteqaError:
                self._texts[doc_id] = None
        return self._texts[doc_id]

    def gold_spans(self, case: EvalCase) -> dict[str, list[m.Span]]:
        """doc id -> gold character spans (a whole document when the evidence has no quote)."""
        spans: dict[str, list[m.Span]] = {}
        for ev in case.evidence:
            text = self.text(ev.doc_id) or ""
            found = m.find_spans(text, ev.quote) if ev.quote else [(0, len(text))]
            spans.setdefault(ev.doc_id, []).extend(found)
        for doc_id, grade in case.relevance.items():
            if grade > 0 and doc_id not in spans:
                spans[doc_id] = [(0, len(self.text(doc_id) or ""))]
        return spans

    def score(self, case: EvalCase, answer: Answer, passages: list[Passage], r: CaseResult, *, k: int) -> None:
        r.query, r.answer, r.refused = answer.query, answer.text, answer.refused
        r.has_conflict = answer.has_conflict
        r.cited_docs = sorted({c.doc_id for c in answer.citations})
        self._check_quotes(answer.citations + answer.see_also, r)
        if case.answerable is not None and case.answers:
            r.correct = not answer.refused and m.answer_matches(answer.text, case.answers)
            r.f1 = 0.0 if answer.refused else m.best_token_f1(answer.text, case.answers)
        self._score_short_answer(case, answer, r)
        if case.conflicting:
            r.true_shown, r.false_alone, r.both_shown = m.counterfactual_shown(
                answer.text, refused=answer.refused, accepted=case.answers, conflicting=case.conflicting
            )
        if r.factoid and not answer.refused:
            r.words_before_citation = m.words_before_citation(answer.text)
        gold_docs = case.gold_docs
        if not gold_docs:
            return
        r.gold_docs_cited = m.cites_two_gold_docs(r.cited_docs, gold_docs)
        self._score_retrieval(case, passages, gold_docs, r, k=k)
        if not answer.refused:
            self._score_citations(case, answer.citations, gold_docs, r)
        if case.kind == "conflict":
            r.conflict_covered = answer.has_conflict and gold_docs <= set(r.cited_docs)

    def _score_short_answer(self, case: EvalCase, answer: Answer, r: CaseResult) -> None:
        """SQuAD EM/F1 on the answer phrase (``Answer.answer``, when the answerer gives one; else
        the whole reply), and whether the phrase is exactly the document span it claims."""
        phrase = getattr(answer, "answer", None)
        if phrase is not None and not answer.refused:
            r.short_answer = phrase
            doc_id = getattr(answer, "answer_doc_id", None)
            r.answer_span_valid = m.answer_span_valid(
                self.text(doc_id) if doc_id else None,
                getattr(answer, "answer_start", None),
                getattr(answer, "answer_end", None),
                phrase,
            )
        if case.answerable is not None:
            prediction = None if answer.refused else (phrase if phrase is not None else answer.text)
            r.squad_em, r.squad_f1 = m.squad_scores(prediction, case.answers)

    def _check_quotes(self, citations: list[Citation], r: CaseResult) -> None:
        for c in citations:
            r.quotes_checked += 1
            text = self.text(c.doc_id)
            if text is None or not quote_is_valid(c, text):
                r.invalid_quotes.append(f"[{c.n}] {c.doc_id} {c.start}-{c.end}: {c.quote[:60]!r}")

    def _score_retrieval(
        self, case: EvalCase, passages: list[Passage], gold_docs: set[str], r: CaseResult, *, k: int
    ) -> None:
        ranked_docs = [str(d) for d in m.unique_in_order(p.doc_id for p in passages)]
        r.ranked_docs = ranked_docs[:k]
        r.doc_recall = m.recall_at_k(ranked_docs, gold_docs, k)
        r.doc_rr = m.reciprocal_rank([d in gold_docs for d in ranked_docs])
        if case.relevance:
            r.ndcg10 = m.ndcg_at_k(ranked_docs, case.relevance, 10)
        quoted = [ev for ev in case.evidence if ev.quote]
        if not quoted:
            return
        gold = self.gold_spans(case)

        def hit(p: Passage, doc_id: str, spans: list[m.Span]) -> bool:
            return p.doc_id == doc_id and any(m.spans_overlap((p.start, p.end), s) for s in spans)

        top = passages[:k]
        found = 0
        for ev in quoted:
            spans = m.find_spans(self.text(ev.doc_id) or "", ev.quote or "")
            found += any(hit(p, ev.doc_id, spans) for p in top)
        r.span_recall = found / len(quoted)
        r.span_rr = m.reciprocal_rank([any(hit(p, d, s) for d, s in gold.items()) for p in passages])

    def _score_citations(self, case: EvalCase, citations: list[Citation], gold_docs: set[str], r: CaseResult) -> None:
        gold = self.gold_spans(case)
        on_span = [
            any(m.spans_overlap((c.start, c.end), s) for s in gold.get(c.doc_id, [])) for c in citations
        ]
        r.citations = len(citations)
        r.citations_on_gold_doc = sum(c.doc_id in gold_docs for c in citations)
        r.citations_on_gold_span = sum(on_span)
        r.cites_gold_evidence = any(on_span)


# summary ----------------------------------------------------------------------------------------
def summarize(results: Sequence[CaseResult], *, k: int) -> dict[str, float | int | None]:
    """Aggregate metrics over some cases; a metric that does not apply to them is None."""
    judged = [r for r in results if r.judged]
    answerable = [r for r in results if r.answerable is True]
    refusable = [r for r in results if r.answerable is not None and r.error is None]
    answered_judged = [r for r in judged if not r.refused and r.error is None]
    conflicts = [r for r in results if r.conflict_covered is not None]
    counterfactual = [r for r in results if r.true_shown is not None]
    unanswerable = [r for r in results if r.answerable is False]
    squad = [r for r in results if r.squad_f1 is not None]
    phrases = [r for r in results if r.answer_span_valid is not None]
    words = [float(r.words_before_citation) for r in results if r.words_before_citation is not None]
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    refusal_p, refusal_r = m.refusal_precision_recall(
        [r.refused for r in refusable], [bool(r.answerable) for r in refusable]
    )
    quotes = sum(r.quotes_checked for r in results)
    p50, p95 = m.percentile(latencies, 50), m.percentile(latencies, 95)
    return {
        "cases": len(results),
        f"doc_recall@{k}": m.mean(r.doc_recall for r in judged if r.doc_recall is not None),
        "doc_mrr": m.mean(r.doc_rr for r in judged if r.doc_rr is not None),
        f"span_recall@{k}": m.mean(r.span_recall for r in judged if r.span_recall is not None),
        "span_mrr": m.mean(r.span_rr for r in judged if r.span_rr is not None),
        "ndcg@10": m.mean(r.ndcg10 for r in judged if r.ndcg10 is not None),
        "answer_accuracy": m.mean(float(bool(r.correct)) for r in answerable),
        "answer_f1": m.mean(r.f1 or 0.0 for r in answerable),
        "citation_precision": m.ratio(
            sum(r.citations_on_gold_doc for r in answered_judged), sum(r.citations for r in answered_judged)
        ),
        "citation_precision_span": m.ratio(
            sum(r.citations_on_gold_span for r in answered_judged), sum(r.citations for r in answered_judged)
        ),
        "citation_recall": m.mean(float(bool(r.cites_gold_evidence)) for r in answered_judged),
        "quote_validity": m.ratio(quotes - sum(len(r.invalid_quotes) for r in results), quotes),
        "quotes_checked": quotes,
        "refusal_precision": refusal_p,
        "refusal_recall": refusal_r,
        "refusal_f1": m.refusal_f1(refusal_p, refusal_r),
        "conflict_coverage": m.mean(float(bool(r.conflict_covered)) for r in conflicts),
        "true_shown": m.mean(float(bool(r.true_shown)) for r in counterfactual),
        "false_alone": m.mean(float(bool(r.false_alone)) for r in counterfactual),
        "both_shown": m.mean(float(bool(r.both_shown)) for r in counterfactual),
        "gold_docs_cited": m.mean(float(bool(r.gold_docs_cited)) for r in results if r.gold_docs_cited is not None),
        "words_before_citation": m.percentile(words, 50),
        "short_em": m.mean(r.squad_em or 0.0 for r in answerable if r.squad_em is not None),
        "short_f1": m.mean(r.squad_f1 or 0.0 for r in answerable if r.squad_f1 is not None),
        "noans_f1": m.mean(r.squad_f1 or 0.0 for r in unanswerable if r.squad_f1 is not None),
        "squad_em": m.mean(r.squad_em or 0.0 for r in squad),
        "squad_f1": m.mean(r.squad_f1 or 0.0 for r in squad),
        "answer_span_valid": m.ratio(sum(bool(r.answer_span_valid) for r in phrases), len(phrases)),
        "answer_phrases": len(phrases),
        "latency_p50_ms": round(p50, 2) if p50 is not None else None,
        "latency_p95_ms": round(p95, 2) if p95 is not None else None,
        "errors": sum(r.error is not None for r in results),
    }


def build_report(
    dataset: EvalDataset, results: Sequence[CaseResult], *, service: QAService, k: int
) -> dict[str, Any]:
    """The JSON report: configuration, overall and per-kind metrics, and every case's result."""
    settings = service.settings
    order = {kind: i for i, kind in enumerate(KINDS)}
    kinds = sorted({r.kind for r in results}, key=lambda kind: (order.get(kind, len(order)), kind))
    stats = service.index.stats()
    return {
        "dataset": dataset.name,
        "k": k,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "answerer": settings.answerer,
            "embedding_model": stats.embedding_model,
            "documents": stats.documents,
            "chunks": stats.chunks,
            **{
                name: getattr(settings, name)
                for name in (
                    "chunk_size",
                    "chunk_overlap",
                    "top_k",
                    "dense_k",
                    "lexical_k",
                    "rrf_k",
                    "dense_weight",
                    "lexical_weight",
                    "refusal_threshold",
                )
            },
        },
        "overall": summarize(results, k=k),
        "by_kind": {kind: summarize([r for r in results if r.kind == kind], k=k) for kind in kinds},
        "cases": [asdict(r) for r in results],
    }
