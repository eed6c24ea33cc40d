"""The shipped span reader: verified loading, exact offsets, and answers a person would accept."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.errors import ModelError
from qa.reader.model import READER_DIR, READER_FILE, READER_SHA256, Reader, file_sha256

EIFFEL = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower. "
    "Construction was completed in 1889, as the entrance to the 1889 World's Fair."
)


@pytest.fixture(scope="module")
def reader() -> Reader:
    return Reader()


def test_shipped_weights_match_their_recorded_hash(reader: Reader) -> None:
    path = READER_DIR / READER_FILE
    assert reader.path == path
    assert file_sha256(path) == READER_SHA256
    assert path.stat().st_size < 100_000_000


def test_a_corrupted_copy_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    copy = tmp_path / "reader.onnx"
    shutil.copyfile(READER_DIR / READER_FILE, copy)
    with copy.open("r+b") as handle:
        handle.seek(copy.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelError, match="sha256.*corrupt or replaced"):
        Reader(copy)


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        Reader(tmp_path / "nowhere.onnx")


def test_finds_the_answer_phrase_in_a_clearly_answerable_passage(reader: Reader) -> None:
    reading = reader.read("Who is the Eiffel Tower named after?", [EIFFEL])
    assert reading.best is not None
    assert "Gustave Eiffel" in reading.best.text


def test_the_answer_comes_from_the_passage_that_holds_it(reader: Reader) -> None:
    other = "The Great Wall of China is a series of fortifications built across northern China."
    reading = reader.read("In what year was construction of the Eiffel Tower completed?", [other, EIFFEL])
    assert reading.best is not None
    assert reading.best.passage == 1
    assert reading.best.text == "1889"


def test_offsets_are_exact_even_around_accents_and_dashes(reader: Reader) -> None:
    passages = [
        "Zoë Müller – the café’s owner since 2004 – serves crêpes in Zürich.",
        EIFFEL,
        "Ünïcödé text\u00a0with a non-breaking space: the river Ø flows 12 km.",
    ]
    for question in ("Who owns the café?", "Where is the tower?", "How long is the river?"):
        reading = reader.read(question, passages, top_k=5)
        assert reading.spans
        for span in reading.spans:
            assert passages[span.passage][span.start : span.end] == span.text
            assert span.text.strip() == span.text and span.text


def test_an_answer_late_in_a_long_passage_is_found_through_overlapping_windows(reader: Reader) -> None:
    filler = " ".join(f"Paragraph {i} talks about weather, trains and the price of bread." for i in range(40))
    passage = filler + " " + EIFFEL
    reading = reader.read("Who is the Eiffel Tower named after?", [passage])
    assert reading.best is not None
    assert passage[reading.best.start : reading.best.end] == reading.best.text
    assert "Gustave Eiffel" in reading.best.text


def test_an_unrelated_question_scores_higher_for_no_answer(reader: Reader) -> None:
    answerable = reader.read("When was the Eiffel Tower completed?", [EIFFEL])
    unrelated = reader.read("Who won the football World Cup in 1998?", [EIFFEL])
    assert unrelated.no_answer_score > answerable.no_answer_score


def test_nothing_to_read_is_no_answer(reader: Reader) -> None:
    reading = reader.read("Who is the Eiffel Tower named after?", ["", "   "])
    assert reading.best is None
    assert not reading.answered()
