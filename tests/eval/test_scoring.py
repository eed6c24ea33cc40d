"""Scoring one case: the answer phrase the answerer will put on ``Answer`` (issue 9), read as it comes."""

from __future__ import annotations

from dataclasses import dataclass

from eval.datasets import EvalCase
from eval.scoring import CaseResult, Scorer
from index.pipeline import DocumentIndex
from qa.types import Answer
from tests.conftest import DOC_DEFEAT


@dataclass
class _AnswerWithPhrase(Answer):
    """``Answer`` as the answerer will soon return it: the answer phrase and its span."""

    answer: str | None = None
    answer_start: int | None = None
    answer_end: int | None = None
    answer_doc_id: str | None = None


def _score(index: DocumentIndex, answer: Answer, case: EvalCase) -> CaseResult:
    result = CaseResult(id=case.id, kind=case.kind, question=case.question, answerable=case.answerable)
    Scorer(index).score(case, answer, [], result, k=10)
    return result


def test_the_answer_phrase_is_scored_squad_style_and_checked_against_its_span(sample_index: DocumentIndex) -> None:
    text = sample_index.get_document(DOC_DEFEAT)[1]
    start = text.index("Fars News Agency")
    case = EvalCase(id="c", question="Who reported it?", kind="factual", answers=("Fars News Agency",), answerable=True)
    reply = "Iran's semiofficial Fars News Agency reported Saturday [1]."

    def answer(phrase: str | None, end: int) -> Answer:
        return _AnswerWithPhrase(
            question=case.question, query=case.question, text=reply, citations=[], refused=False,
            answerer="extractive", answer=phrase, answer_start=start, answer_end=end, answer_doc_id=DOC_DEFEAT,
        )

    exact = _score(sample_index, answer("Fars News Agency", start + len("Fars News Agency")), case)
    assert (exact.short_answer, exact.answer_span_valid, exact.squad_em, exact.squad_f1) == (
        "Fars News Agency", True, 1.0, 1.0,
    )
    off_by_one = _score(sample_index, answer("Fars News Agency", start + len("Fars News Agenc")), case)
    assert off_by_one.answer_span_valid is False
    # No phrase (today's answerer): the whole reply is scored, and there is no span to check.
    plain = Answer(question=case.question, query=case.question, text=reply, citations=[], refused=False,
                   answerer="extractive")
    whole = _score(sample_index, plain, case)
    assert whole.short_answer is None and whole.answer_span_valid is None
    assert whole.squad_em == 0.0 and 0.0 < (whole.squad_f1 or 0.0) < 1.0
