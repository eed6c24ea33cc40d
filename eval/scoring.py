"""Scoring one case: what citeqa answered against the gold data, kept as a :class:`CaseResult`.

:mod:`eval.runner` asks the questions and aggregates; this module decides, per case, whether the
answer is correct, which citations hit gold evidence, what retrieval ranked, and the qa-dev
figures (counterfactual answers shown, gold documents cited, words before the first citation,
SQuAD scores of the answer phrase).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eval import metrics as m
from eval.datasets import EvalCase
from index.errors import CiteqaError
from index.pipeline import DocumentIndex
from qa.citations import Citation, quote_is_valid
from qa.types import Answer, Passage


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
    notice: str | None = None  # e.g. why the LLM answerer fell back
    llm_check: dict[str, Any] | None = None  # the LLM answerer's checker counts (Answer.llm_check)

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


class Scorer:
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
        r.notice = answer.notice
        r.llm_check = answer.llm_check.to_dict() if answer.llm_check is not None else None
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
