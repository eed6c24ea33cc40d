"""A person's or organisation's answer leads with the fullest name its document gives."""

from __future__ import annotations

from datetime import date

import pytest

from index.embedding import Embedder
from index.models import Document
from qa.service import QAService
from tests.qa.test_accounts import _service
from tests.qa.test_answer import assert_citations_verifiable


@pytest.fixture(scope="module")
def names(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QAService:
    docs = [
        Document(
            id="oa",
            title="Back at OpenAI",
            source="Tech Daily",
            published_at=date(2023, 11, 22),
            text="Sam Altman returned to OpenAI as chief executive on Wednesday. The board that had fired him "
            "was replaced by three new directors. Altman thanked the engineers who had threatened to resign "
            "over his dismissal.",
        ),
        Document(
            id="dc",
            title="Winter of 1776",
            source="History Notes",
            published_at=date(2020, 1, 5),
            text="George Washington led the army across the Delaware River in December 1776. "
            "After the crossing, the soldiers rested in Washington, a village on the river bank.",
        ),
    ]
    return _service(tmp_path_factory.mktemp("names"), embedder, docs)


def test_a_surname_answer_leads_with_the_full_name_the_document_gives(names: QAService) -> None:
    answer = names.ask("Who thanked the engineers who had threatened to resign?")
    assert not answer.refused
    assert answer.answer == "Sam Altman"
    _, text = names.index.get_document("oa")
    assert answer.answer_doc_id == "oa"
    assert text[answer.answer_start : answer.answer_end] == "Sam Altman"
    assert answer.text.startswith("Sam Altman [")
    # the sentence naming him in full is cited, and so is the one that answers
    quotes = [c.quote for c in answer.citations]
    assert any(q.startswith("Sam Altman returned") for q in quotes)
    assert any(q.startswith("Altman thanked") for q in quotes)
    assert_citations_verifiable(names.index, answer)


def test_a_place_keeps_the_name_it_is_given(names: QAService) -> None:
    answer = names.ask("Where did the soldiers rest after the crossing?")
    assert not answer.refused
    assert answer.answer != "George Washington"
    assert "George Washington [" not in answer.text
    assert_citations_verifiable(names.index, answer)
