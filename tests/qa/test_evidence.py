"""How questions are read for evidence scoring: framing words, counted things, names, link headings."""

from __future__ import annotations

from index.lexical import BM25Index
from qa.evidence import QueryTerms, frame_words, statements


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
