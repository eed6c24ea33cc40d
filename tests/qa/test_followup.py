"""Follow-up questions are resolved against the conversation before retrieval."""

from __future__ import annotations

from qa.followup import is_followup, resolve_followup
from qa.types import Message
from tests.conftest import DOC_DEFEAT, DOC_RETAKE


def test_standalone_questions_are_left_alone():
    history = [Message("user", "Who was killed by a mortar shell?"), Message("assistant", "Samadi [1]")]
    question = "Where were mass graves found in the Kirkuk province?"
    assert not is_followup(question)
    assert resolve_followup(question, history) == question


def test_pointing_questions_take_context_from_earlier_turns():
    history = [Message("user", "Who was killed by a mortar shell?"), Message("assistant", "Khayrallah Samadi [1]")]
    query = resolve_followup("Who reported that?", history)
    assert "mortar shell" in query and "Khayrallah Samadi" in query and "[1]" not in query


def test_who_reported_that(sample_qa):
    history = [
        Message("user", "Who was killed by a mortar shell?"),
        Message("assistant", sample_qa.ask("Who was killed by a mortar shell?").text),
    ]
    answer = sample_qa.ask("Who reported that?", history=history)
    assert not answer.refused
    assert "Fars News Agency" in answer.text
    assert answer.citations[0].doc_id == DOC_DEFEAT


def test_and_how_many_died(sample_qa):
    first = "What did the Syrian aviation bombardments do to evict the jihadists from Abu Kamal?"
    history = [Message("user", first), Message("assistant", sample_qa.ask(first).text)]
    answer = sample_qa.ask("And how many died?", history=history)
    assert not answer.refused
    assert "more than 30 deaths" in answer.text
    assert any(c.doc_id == DOC_RETAKE for c in answer.citations)


def test_who_reported_that_names_every_source_of_a_disputed_claim(sample_qa):
    first = "Who controls Abu Kamal?"
    history = [Message("user", first), Message("assistant", sample_qa.ask(first).text)]
    answer = sample_qa.ask("Who reported that?", history=history)
    assert not answer.refused
    assert {c.doc_id for c in answer.citations} == {DOC_RETAKE, DOC_DEFEAT}
    assert "Global News (2017-11-19)" in answer.text
