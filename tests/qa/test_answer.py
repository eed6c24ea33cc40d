"""The extractive answerer on the sample corpus: correct, cited, verifiable, refuses, shows both sides."""

from __future__ import annotations

import pytest

from index.errors import InvalidRequest
from qa.citations import quote_is_valid
from qa.shapes import REFUSAL_TEXT
from tests.conftest import DOC_DEFEAT, DOC_RETAKE


def assert_citations_verifiable(index, answer):
    for citation in answer.citations + answer.see_also:
        _, text = index.get_document(citation.doc_id)
        assert quote_is_valid(citation, text), citation
    for citation in answer.citations:
        assert f"[{citation.n}]" in answer.text


@pytest.mark.parametrize(
    ("question", "expected", "doc_id"),
    [
        ("Who was killed by a mortar shell?", "Khayrallah Samadi", DOC_DEFEAT),
        ("How many deaths did the bombardments cause?", "more than 30 deaths", DOC_RETAKE),
        ("Where were the mass graves found?", "Al Hauiya", DOC_RETAKE),
        ("How many corpses were in the mass graves?", "more than 400 corpses", DOC_RETAKE),
        ("Who is Rakan Said?", "governor of the Iraqi province of Kirkuk", DOC_RETAKE),
        ("Which Revolutionary Guards general was present at the battle?", "Qasem Soleimani", DOC_DEFEAT),
    ],
)
def test_factual_questions_are_answered_with_the_right_citation(sample_qa, sample_index, question, expected, doc_id):
    answer = sample_qa.ask(question)
    assert not answer.refused
    assert expected in answer.text
    assert any(c.doc_id == doc_id and expected in c.quote for c in answer.citations)
    assert_citations_verifiable(sample_index, answer)


@pytest.mark.parametrize(
    "question",
    ["What is the capital of France?", "Who won the 2018 Iraqi election?", "What happened in Raqqa in 2019?"],
)
def test_unanswerable_questions_are_refused_with_see_also(sample_qa, sample_index, question):
    answer = sample_qa.ask(question)
    assert answer.refused
    assert answer.text == REFUSAL_TEXT
    assert answer.citations == []
    assert answer.see_also  # closest passages offered, not presented as the answer
    assert_citations_verifiable(sample_index, answer)


@pytest.mark.parametrize(
    "question",
    [
        "Who controls Abu Kamal?",
        "Did ISIS hold Boukamal?",
        # The undated report's side is worded far from the question ("evicted the government forces").
        "What is the situation of the pro-government forces in Boukamal?",
    ],
)
def test_conflicting_reports_are_shown_side_by_side_with_dates(sample_qa, sample_index, question):
    answer = sample_qa.ask(question)
    assert not answer.refused
    assert answer.has_conflict
    assert {side.doc_id for side in answer.conflicts} == {DOC_RETAKE, DOC_DEFEAT}
    assert {c.doc_id for c in answer.citations} == {DOC_RETAKE, DOC_DEFEAT}
    assert "2017-11-19" in answer.text and "undated" in answer.text
    for side in answer.conflicts:
        assert side.citations and all(answer.citations[n - 1].doc_id == side.doc_id for n in side.citations)
    assert_citations_verifiable(sample_index, answer)


def test_answer_reports_timings_and_the_query_used(sample_qa):
    answer = sample_qa.ask("Who was killed by a mortar shell?")
    assert answer.query == answer.question
    assert set(answer.timings_ms) >= {"retrieve", "answer", "total"}


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000])
def test_bad_questions_are_rejected_clearly(sample_qa, question):
    with pytest.raises(InvalidRequest):
        sample_qa.ask(question)


def test_unknown_answerer_is_rejected(sample_qa):
    with pytest.raises(InvalidRequest, match="llm"):
        sample_qa.ask("Who is Rakan Said?", answerer="llm")  # no LLM configured here


@pytest.mark.parametrize(
    "question",
    [
        # "Canadian" is only in a READ MORE link to another story, not in this one.
        "Which Canadian soldiers were killed fighting ISIS?",
        # The town and the group are there; who commanded them is not.
        "Who commanded the Islamic State fighters in Abu Kamal?",
        # There is a death toll, but it does not count US soldiers.
        "How many US soldiers were killed in the battle for Abu Kamal?",
    ],
)
def test_questions_that_only_share_the_topic_are_refused(sample_qa, question):
    answer = sample_qa.ask(question)
    assert answer.refused, answer.text


def test_another_name_for_the_same_group_finds_its_evidence(sample_qa, sample_index):
    answer = sample_qa.ask("Which was the last Syrian city held by Daesh?")
    assert not answer.refused
    assert any(c.doc_id == DOC_RETAKE and "the last city of Syria in its power" in c.quote for c in answer.citations)
    assert_citations_verifiable(sample_index, answer)


def test_question_framing_does_not_count_against_the_evidence(sample_qa, sample_index):
    answer = sample_qa.ask("What part did Hezbollah play in the battle?")
    assert not answer.refused
    assert any(c.doc_id == DOC_DEFEAT and "Hezbollah" in c.quote for c in answer.citations)
    assert_citations_verifiable(sample_index, answer)
