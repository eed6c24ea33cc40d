"""Hybrid retrieval on the sample corpus: name variants meet, filters restrict, modes differ."""

from __future__ import annotations

from datetime import date

import pytest

from qa.retrieve import retrieve
from qa.types import Filters
from tests.conftest import DOC_DEFEAT, DOC_RETAKE


@pytest.mark.parametrize(
    "question",
    [
        "What happened in Boukamal?",
        "What happened in Abu Kamal?",
        "What happened in Albu Kamal?",
        "what happened in boukamal",
    ],
)
def test_every_spelling_of_the_town_reaches_both_articles(sample_index, question):
    found = retrieve(sample_index, question, settings=sample_index.settings, k=5)
    assert {p.doc_id for p in found.passages} == {DOC_RETAKE, DOC_DEFEAT}


def test_bm25_alone_bridges_spellings(sample_index):
    # "Boukamal" is only in the Global News report; the skeleton key finds "Abu Kamal" in the other.
    found = retrieve(sample_index, "Boukamal", settings=sample_index.settings, k=10, mode="lexical")
    assert DOC_RETAKE in {p.doc_id for p in found.passages}
    found = retrieve(sample_index, "Al-Bagdad", settings=sample_index.settings, k=3, mode="lexical")
    assert any("Al-Bagdadi" in p.text for p in found.passages)


def test_passages_carry_offsets_scores_and_both_retrievers(sample_index):
    found = retrieve(sample_index, "Khayrallah Samadi mortar shell", settings=sample_index.settings, k=3)
    top = found.passages[0]
    assert top.doc_id == DOC_DEFEAT and "mortar shell" in top.text
    _, text = sample_index.get_document(top.doc_id)
    assert text[top.start : top.end] == top.text
    assert top.dense_rank is not None and top.lexical_rank is not None
    assert [p.score for p in found.passages] == sorted((p.score for p in found.passages), reverse=True)


def test_filters_by_document_source_and_date(sample_index):
    settings = sample_index.settings
    only = retrieve(sample_index, "Abu Kamal", settings=settings, k=10, filters=Filters(doc_ids=(DOC_RETAKE,)))
    assert only.passages and {p.doc_id for p in only.passages} == {DOC_RETAKE}
    by_source = retrieve(sample_index, "Abu Kamal", settings=settings, k=10, filters=Filters(sources=("Global News",)))
    assert by_source.passages and {p.doc_id for p in by_source.passages} == {DOC_DEFEAT}
    dated = Filters(date_from=date(2017, 11, 18), date_to=date(2017, 11, 20))
    in_range = retrieve(sample_index, "Abu Kamal", settings=settings, k=10, filters=dated)
    assert in_range.passages and {p.doc_id for p in in_range.passages} == {DOC_DEFEAT}
    too_late = retrieve(sample_index, "Abu Kamal", settings=settings, k=10, filters=Filters(date_from=date(2018, 1, 1)))
    assert too_late.passages == []
