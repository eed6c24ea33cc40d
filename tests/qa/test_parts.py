"""Which sources a question names, spelled as questions spell them."""

from __future__ import annotations

from datetime import date

from qa.parts import named_days, named_parts, source_aliases

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


def test_sources_named_together_share_the_claim_that_follows():
    question = "Do the TechCrunch and Fortune articles both suggest that the blockade hurts aid groups?"
    parts = named_parts(question, SOURCES)
    assert [(m.source, m.clause) for m in parts.mentions] == [
        ("TechCrunch", question),
        ("Fortune", "Fortune articles both suggest that the blockade hurts aid groups?"),
    ]
    # a clause with words of its own keeps them alone
    parts = named_parts("Does the Fortune article claim X is legal, while The Verge says Y?", SOURCES)
    assert [m.clause for m in parts.mentions] == [
        "Does the Fortune article claim X is legal, while ",
        "The Verge says Y?",
    ]


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


def test_named_days_read_on_after_before_and_iso_and_skip_impossible_dates():
    days = named_days(
        "on November 6, 2023, after Oct 1, 2023, after October 1, 2023, before 2023-12-15, February 30, 2023"
    )
    assert [(d.date_from, d.date_to) for d in days] == [
        (date(2023, 11, 6), date(2023, 11, 6)),
        (date(2023, 10, 2), None),
        (date.min, date(2023, 12, 14)),
    ]


def test_one_outlet_named_once_with_two_days_makes_one_dated_part_per_day():
    question = (
        "After TechCrunch reported on Epic Games on November 6, 2023, and then reported on a class action "
        "suit against Google on December 15, 2023, was the portrayal consistent?"
    )
    parts = named_parts(question, {"TechCrunch", "The Verge"})
    assert [(m.source, m.date_from, m.date_to) for m in parts.mentions] == [
        ("TechCrunch", date(2023, 11, 6), date(2023, 11, 6)),
        ("TechCrunch", date(2023, 12, 15), date(2023, 12, 15)),
    ]
    assert "Epic Games" in parts.mentions[0].clause and "class action" in parts.mentions[1].clause
    assert "".join(m.clause for m in parts.mentions) == question
    assert parts.named == 2 and parts.missing_share == 0.0


def test_a_mention_with_one_day_is_narrowed_to_it_and_one_without_is_not():
    parts = named_parts(
        "Did The Verge report published after September 26, 2023 agree with TechCrunch?", {"TechCrunch", "The Verge"}
    )
    assert [(m.source, m.date_from, m.date_to) for m in parts.mentions] == [
        ("The Verge", date(2023, 9, 27), None),
        ("TechCrunch", None, None),
    ]


def test_a_named_day_is_kept_inside_the_callers_date_range():
    from qa.service import _within
    from qa.types import Filters

    caller = Filters(sources=("TechCrunch",), date_from=date(2023, 10, 1), date_to=date(2023, 10, 31))
    narrowed = _within(caller, date(2023, 10, 6), date(2023, 10, 6))
    assert narrowed == Filters(sources=("TechCrunch",), date_from=date(2023, 10, 6), date_to=date(2023, 10, 6))
    assert _within(caller, date.min, date(2023, 10, 9)) == Filters(
        sources=("TechCrunch",), date_from=date(2023, 10, 1), date_to=date(2023, 10, 9)
    )
    assert _within(Filters(), date.min, date(2023, 10, 9)) == Filters(date_to=date(2023, 10, 9))
    assert _within(caller, date(2023, 12, 15), date(2023, 12, 15)) is None  # outside the caller's range
