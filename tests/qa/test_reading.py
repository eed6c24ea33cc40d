"""The trained reader inside the extractive answerer: its window, its signals, its answer phrase."""

from __future__ import annotations

import numpy as np
import pytest

from index.pipeline import DocumentIndex
from qa.answer import ExtractiveAnswerer
from qa.evidence import Evidence
from qa.reading import NEIGHBOURS, ReaderView, read_many, shipped_reader, window_of
from tests.conftest import DOC_DEFEAT


def evidence_at(index: DocumentIndex, doc_id: str, phrase: str) -> Evidence:
    """The sentence of ``doc_id`` that holds ``phrase``, as the answerer would have scored it."""
    _, chunks = index.document_chunks(doc_id)
    for chunk in chunks:
        for start, end in chunk.sentences:
            text = chunk.text[start - chunk.start : end - chunk.start]
            if phrase in text:
                return Evidence(
                    chunk=chunk, start=start, end=end, text=text, vector=np.zeros(chunk.sentence_vectors.shape[1]),
                    dense=0.5, coverage=0.5, score=0.5, passage_rank=0,
                )
    raise AssertionError(f"no sentence of {doc_id} holds {phrase!r}")


def test_the_window_is_the_sentence_with_its_neighbours_inside_its_chunk(sample_index: DocumentIndex) -> None:
    best = evidence_at(sample_index, DOC_DEFEAT, "mortar shell")
    lo, hi = window_of(best)
    spans = list(best.chunk.sentences)
    at = spans.index((best.start, best.end))
    assert lo == spans[max(0, at - NEIGHBOURS)][0] and hi == spans[min(len(spans) - 1, at + NEIGHBOURS)][1]
    assert best.chunk.start <= lo <= best.start < best.end <= hi <= best.chunk.end


def test_the_reader_phrase_is_an_exact_span_of_the_best_sentence(sample_index: DocumentIndex) -> None:
    best = evidence_at(sample_index, DOC_DEFEAT, "mortar shell")
    view = read_many(shipped_reader(), "Who was killed by a mortar shell?", [best])[0]
    assert view.phrase is not None and view.in_sentence
    text, start, end = view.phrase
    assert best.text[start:end] == text and "Samadi" in text
    _, document = sample_index.get_document(DOC_DEFEAT)
    assert document[best.start + start : best.start + end] == text


def test_an_unrelated_question_reads_as_less_answerable(sample_index: DocumentIndex) -> None:
    best = evidence_at(sample_index, DOC_DEFEAT, "mortar shell")
    asked = read_many(shipped_reader(), "Who was killed by a mortar shell?", [best])[0]
    unrelated = read_many(shipped_reader(), "What is the boiling point of mercury?", [best])[0]
    assert unrelated.no_answer > asked.no_answer
    assert unrelated.signals()["reader_no_answer"] > asked.signals()["reader_no_answer"]


def test_signals_are_bounded() -> None:
    assert ReaderView(no_answer=1e9, in_sentence=False, phrase=None).signals() == {
        "reader_no_answer": 2.0,
        "reader_in_sentence": 0.0,
    }


@pytest.mark.parametrize("question", ["Who was killed by a mortar shell?", "Where were the mass graves found?"])
def test_answers_carry_the_reader_signals_and_a_verifiable_phrase(sample_index: DocumentIndex, question: str) -> None:
    from qa.service import QAService

    answer = QAService(index=sample_index, settings=sample_index.settings).ask(question)
    assert not answer.refused
    assert {"reader_no_answer", "reader_in_sentence"} <= set(answer.signals)
    assert answer.answer and answer.answer_doc_id
    _, document = sample_index.get_document(answer.answer_doc_id)
    assert document[answer.answer_start : answer.answer_end] == answer.answer
    assert answer.text.startswith(f"{answer.answer} [1]")


def test_without_the_reader_there_are_no_reader_signals(sample_index: DocumentIndex) -> None:
    from qa.retrieve import retrieve

    answerer = ExtractiveAnswerer(index=sample_index, reader=False)
    question = "Who was killed by a mortar shell?"
    vector = sample_index.embedder.embed_queries([question])[0]
    found = retrieve(sample_index, question, settings=sample_index.settings, query_vector=vector)
    answer = answerer.answer(question=question, query=question, passages=found.passages, query_vector=vector)
    assert not answer.refused
    assert "reader_no_answer" not in answer.signals
