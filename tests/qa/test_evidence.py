"""How questions are read for evidence scoring: framing words, counted things, names, link headings."""

from __future__ import annotations

from index.lexical import BM25Index
from qa.evidence import QueryTerms, expected_fact, frame_words, statements


def small_index() -> BM25Index:
    lexical = BM25Index()
    lexical.add(
        ["a", "b"],
        [
            "ISIS lost Abu Kamal. More than 30 deaths were counted by the observatory.",
            "Hezbollah units fought in the battle for Boukamal.",
        ],
    )
    return lexical


def test_framing_words_are_not_concepts_the_evidence_must_hold():
    assert frame_words("How many US soldiers were killed?") == {"many"}
    assert frame_words("What part did Hezbollah play in the battle?") == {"part", "play"}
    assert frame_words("What role does Iran play in the war?") == {"role", "play"}
    assert frame_words("What happened in Raqqa in 2019?") == {"happened"}
    assert frame_words("What is the situation of the pro-government forces?") == {"situation"}
    # "part" without "play" is what is asked about, not framing.
    assert frame_words("Which part of the town was shelled?") == set()
    terms = QueryTerms(small_index(), "What part did Hezbollah play in the battle?")
    assert terms.concept_words == ["Hezbollah", "battle"]


def test_how_many_names_what_is_counted():
    terms = QueryTerms(small_index(), "How many US soldiers were killed in the battle?")
    assert [terms.concept_words[i] for i in terms.counted] == ["US", "soldiers"]
    assert QueryTerms(small_index(), "How much of the territory was lost?").counted == []


def test_a_capitalised_first_content_word_is_a_key_name():
    terms = QueryTerms(small_index(), "Which Canadian soldiers were killed fighting ISIS?")
    assert {terms.concept_words[i] for i in terms.key_concepts} == {"Canadian", "ISIS"}
    # The question's own first word is capitalised only because it comes first.
    terms = QueryTerms(small_index(), "Hezbollah fought where?")
    assert "Hezbollah" not in {terms.concept_words[i] for i in terms.key_concepts}


def test_names_no_indexed_text_holds_are_known_as_unknown():
    terms = QueryTerms(small_index(), "Which was the last city held by Daesh?")
    assert {terms.concept_words[i] for i in terms.unknown} >= {"Daesh"}
    assert "ISIS" not in {terms.concept_words[i] for i in QueryTerms(small_index(), "Did ISIS lose?").unknown}


def test_link_headings_inside_an_article_are_not_its_statements():
    text = "# Title of the story\nBody sentence.\n## READ MORE: Canada's mission shifts\nMore body."
    kept = statements(text, start=0)
    assert "Title of the story" in kept and "Body sentence." in kept and "More body." in kept
    assert "Canada" not in kept
    # A chunk from the middle of a document has no title line to keep.
    assert "Canada" not in statements("## READ MORE: Canada's mission\nBody.", start=120)


def test_a_question_about_a_date_expects_a_time_however_it_is_worded():
    for question in (
        "When was Super Mario Odyssey released?",
        "What year did it open?",
        "What is the release date for Super Mario Odyssey on Nintendo Switch?",
        "What's the premiere date of the show?",
        "What was the date of the battle?",
    ):
        assert expected_fact(question) is not None, question
    for question in (
        "What is women's year-end No 1 in tennis in 2020?",  # "year-end" is a ranking
        "What is the significance of the year 1776?",  # asks about the year, not for one
        "What is the name of the company?",
    ):
        assert expected_fact(question) is None, question


def test_a_release_date_question_is_answered_by_the_dated_sentence(tmp_path, embedder):
    from datetime import date

    from index.models import Document
    from tests.qa.test_accounts import _service

    docs = [
        Document(
            id="shop",
            title="Store page",
            source="Shop",
            published_at=date(2023, 3, 1),
            text="Super Mario Odyssey and Nintendo Switch are trademarks of Nintendo. "
            "Shop Super Mario Odyssey for Nintendo Switch at our store.",
        ),
        Document(
            id="wiki",
            title="Super Mario Odyssey",
            source="Encyclopedia",
            published_at=date(2020, 5, 1),
            text="Super Mario Odyssey was released on October 27, 2017 to universal acclaim. "
            "It sold more than ten million copies.",
        ),
    ]
    service = _service(tmp_path, embedder, docs)
    answer = service.ask("What is the release date for Super Mario Odyssey on Nintendo Switch?")
    assert not answer.refused
    assert answer.citations[0].doc_id == "wiki"
    assert "October 27, 2017" in answer.text
