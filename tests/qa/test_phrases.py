"""Short answer phrases from evidence sentences, with the real spaCy model (en_core_web_sm)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from index.errors import ModelError
from qa import nlp, phrases
from qa.phrases import PhraseExtractor, is_factoid


@pytest.fixture(scope="module")
def extractor() -> PhraseExtractor:
    return PhraseExtractor()


def only(extractor: PhraseExtractor, question: str, sentence: str) -> phrases.Phrase | None:
    (phrase,) = extractor.extract(question, [sentence])
    if phrase is not None:
        assert sentence[phrase.start : phrase.end] == phrase.text
        assert 0.0 <= phrase.score <= 1.0
    return phrase


def test_a_count_comes_with_its_unit(extractor):
    phrase = only(
        extractor,
        "How many days did the Warsaw Uprising last?",
        "The uprising lasted 63 days, and by its end the city centre lay in ruins.",
    )
    assert phrase is not None and phrase.text == "63 days"


def test_who_finds_the_person_named_in_the_sentence(extractor):
    phrase = only(
        extractor,
        "Who was killed by a mortar shell?",
        "On 12 August the commander of the battalion, Jan Kowalski, was killed by a mortar shell near the bridge.",
    )
    assert phrase is not None and phrase.text == "Jan Kowalski" and phrase.label == "PERSON"


def test_an_entity_the_question_names_is_never_the_answer(extractor):
    sentence = "The University of Chicago was founded by John D. Rockefeller in 1890."
    who = only(extractor, "Who founded the University of Chicago?", sentence)
    assert who is not None and who.text == "John D. Rockefeller"
    when = only(extractor, "In what year was the University of Chicago founded?", sentence)
    assert when is not None and when.text == "1890" and when.label == "DATE"
    # The only name in the sentence is the one asked about: no phrase rather than an echo.
    assert only(extractor, "Who was Warsaw's mayor?", "Warsaw had a mayor.") is None


def test_which_x_uses_the_head_noun_for_the_kind_of_answer(extractor):
    city = only(extractor, "Which city is the capital of Poland?", "Since 1596 Warsaw has been the capital of Poland.")
    assert city is not None and city.text == "Warsaw"
    company = only(extractor, "What company owns Sky?", "Since 2018 Sky has been owned by Comcast, an American firm.")
    assert company is not None and company.text == "Comcast" and company.label == "ORG"


def test_how_much_returns_the_amount(extractor):
    phrase = only(
        extractor,
        "How much did the new library cost?",
        "Built in 1892 by Henry Ives Cobb, the new library cost $35 million.",
    )
    assert phrase is not None and phrase.text == "$35 million" and phrase.label == "MONEY"


def test_one_phrase_or_none_per_sentence_in_order(extractor):
    sentences = [
        "The weather was mild that spring.",
        "The uprising lasted 63 days.",
        "Nothing more was said.",
    ]
    result = extractor.extract("How many days did the Warsaw Uprising last?", sentences)
    assert len(result) == 3
    assert result[1] is not None and result[1].text == "63 days"
    assert result[0] is None
    assert extractor.extract("Who won?", []) == []


def test_non_factoid_questions_get_no_phrase(extractor):
    sentence = "The uprising lasted 63 days because the Soviet army did not advance."
    for question in (
        "Why did the uprising fail?",
        "How did the uprising end?",
        "Did the uprising fail?",
        "Explain what happened in the uprising.",
        # a yes/no question whose wh-word opens a relative clause
        "Does the report on the uprising, which lasted 63 days, blame the Soviet army?",
        "Was the army that stopped when the uprising began Soviet?",
    ):
        assert not is_factoid(question)
        assert extractor.answer_type(question) is None
        assert extractor.extract(question, [sentence]) == [None]


def test_answer_types_from_wh_words_and_head_nouns(extractor):
    assert is_factoid("The uprising lasted how many days?")
    assert extractor.answer_type("When did the uprising begin?").labels[0] == "DATE"
    year = extractor.answer_type("In what year was the university founded?")
    assert year is not None and year.head == "year" and "DATE" in year.labels
    assert extractor.answer_type("What researcher discovered it?").labels[0] == "PERSON"
    assert extractor.answer_type("What is the name of the company that owns Sky?").labels == ("ORG",)
    count = extractor.answer_type("How many corpses were found?")
    assert count is not None and count.number and count.head == "corpses"


def test_a_changed_model_file_is_refused(tmp_path: Path, monkeypatch):
    package, _ = nlp.resolve_model(nlp.DEFAULT_MODEL)
    copy = tmp_path / package.name
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert nlp.model_tree_sha256(copy) == nlp.MODEL_SHA256[nlp.DEFAULT_MODEL]
    meta = copy / "meta.json"
    meta.write_text(meta.read_text() + " ")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match="corrupt or replaced"):
        PhraseExtractor()


def test_an_unknown_model_is_refused():
    with pytest.raises(ModelError, match="no recorded sha256"):
        PhraseExtractor(model="en_core_web_lg")
