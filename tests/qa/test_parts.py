"""Which sources a question names, spelled as questions spell them."""

from __future__ import annotations

from qa.parts import named_parts, source_aliases

SOURCES = [
    "Fortune",
    "The Verge",
    "Cnbc | World Business News Leader",
    "The Independent - Life and Style",
    "TechCrunch",
]


def test_aliases_drop_the_article_and_the_section_name():
    assert "Verge" in source_aliases("The Verge")
    assert "Cnbc" in source_aliases("Cnbc | World Business News Leader")
    assert "The Independent" in source_aliases("The Independent - Life and Style")


def test_indexed_sources_are_found_in_order_of_mention_quoted_or_not():
    parts = named_parts(
        "Does the 'Fortune' article claim X, while the article from The Verge suggests Y, as Cnbc reported?", SOURCES
    )
    assert parts.known == ("Fortune", "The Verge", "Cnbc | World Business News Leader")
    assert parts.unknown == ()
    assert parts.missing_share == 0.0


def test_a_publication_the_index_lacks_is_named_as_missing():
    parts = named_parts(
        "Considering an article from The New York Times and a piece by TechCrunch, which department did he lead?",
        SOURCES,
    )
    assert parts.known == ("TechCrunch",)
    assert parts.unknown == ("The New York Times",)
    assert parts.missing_share == 0.5
    assert named_parts("Considering the Bloomberg article on Apple, who leads it?", SOURCES).unknown == ("Bloomberg",)


def test_topics_dates_and_plain_questions_are_not_sources():
    assert (
        named_parts(
            "Between the TechCrunch report on Sam Bankman-Fried published on October 7, 2023 ...", SOURCES
        ).unknown
        == ()
    )
    assert named_parts("After Polygon's review on October 20th, did it agree?", SOURCES).named == 0
    assert named_parts("Who won the women's singles Wimbledon in 2019?", SOURCES).named == 0
    # "fortune" as a word, not the magazine
    assert named_parts("Did he make a fortune from the sale?", SOURCES).known == ()
