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
from dataclasses import asdict
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.datasets import KINDS, EvalCase, EvalDataset, verify_evidence
from eval.errors import DatasetError
from eval.scoring import CaseResult, Scorer
from index.errors import CiteqaError
from index.pipeline import DocumentIndex, ProgressFactory
from index.settings import Settings
from qa.service import QAService

DEFAULT_K = 10
# The settings that shape retrieval and evidence scores (reports and calibration record them).
RETRIEVAL_SETTINGS = (
    "chunk_size",
    "chunk_overlap",
    "top_k",
    "dense_k",
    "lexical_k",
    "rrf_k",
    "dense_weight",
    "lexical_weight",
)
MAX_PASSAGES = 50  # passages fetched per query to rank documents for doc-level metrics


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
    scorer = Scorer(service.index)
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


def _run_case(case: EvalCase, service: QAService, scorer: Scorer, k: int) -> CaseResult:
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


def build_report(dataset: EvalDataset, results: Sequence[CaseResult], *, service: QAService, k: int) -> dict[str, Any]:
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
            **{name: getattr(settings, name) for name in RETRIEVAL_SETTINGS + ("refusal_threshold",)},
        },
        "overall": summarize(results, k=k),
        "by_kind": {kind: summarize([r for r in results if r.kind == kind], k=k) for kind in kinds},
        "cases": [asdict(r) for r in results],
    }
