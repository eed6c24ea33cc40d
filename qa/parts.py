"""Questions that name their sources: "Does the article from Fortune claim ..., while The Verge ...?"

Such a question has one part per named source, and a good answer cites evidence from each of them
rather than the few passages that happen to rank first. A named source that no indexed document
comes from ("... a piece by The Washington Post") is a part the documents cannot support.

Sources are matched against the ``source`` metadata of indexed documents, under a few spellings a
question uses for them: "The Sydney Morning Herald" / "Sydney Morning Herald", "Cnbc | World
Business News Leader" / "Cnbc", "The Independent - Life and Style" / "The Independent".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta

from index.lexical import STOPWORDS

# "an article from X", "a report by X", "reported by X", "published in X": the phrasings that introduce a
# publication by name ("a report on X" introduces a topic). X is a run of capitalised words.
_INTRO = (
    r"(?:article|report|piece|review|story|coverage|analysis|op-ed|column|feature|post)s?\s+(?:from|by|in)"
    r"|reported\s+by|published\s+(?:by|in)|(?:writes|wrote|says|said)\s+in"
)
_NAME = r"'?(?:[Tt]he\s+)?(?:[A-Z0-9][\w&.'-]*)(?:\s+(?:of\s+)?[A-Z0-9][\w&.'-]*)*'?"
_INTRODUCED = re.compile(rf"\b(?:{_INTRO})\s+(?:(?:an?|the)\s+)?(?P<name>{_NAME})")
# "a Bloomberg article", "the CNBC report", "a Cricbuzz report": the name before the noun.
_BEFORE_NOUN = re.compile(
    rf"\b(?:an?|the|another)\s+(?P<name>{_NAME})\s+(?:article|report|piece|review|story|post)s?\b"
)
_NOT_A_NAME = re.compile(r"(?:the\s+)?(?:\d|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d)", re.I)
_SPLIT = re.compile(r"\s+[|\-–—:]\s+")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
# "on October 6, 2023", "published after November 6, 2023", "2023-10-20": a day, and how the clause relates to it.
_DAY = re.compile(
    rf"(?:\b(?P<rel>after|before|since|on)\s+)?(?:\b(?P<month>{'|'.join(_MONTHS)})\s+(?P<day>\d{{1,2}}),?\s+"
    r"(?P<year>(?:19|20)\d\d)\b|\b(?P<iso>(?:19|20)\d\d-\d\d-\d\d)\b)",
    re.I,
)


# Words that say a source is named, not what it says: "the TechCrunch and Fortune articles".
_NAMING_WORDS = frozenset("article articles report reports piece pieces story stories post posts sources".split())


def _says_nothing(text: str) -> bool:
    """Does ``text`` (a clause without its source's name) hold no word of its own? "Do the
    TechCrunch and " says nothing: in "Do the TechCrunch and Fortune articles both suggest X?"
    the claim X belongs to both."""
    words = (w.lower() for w in re.findall(r"[^\W\d_]+", text))
    return all(w in STOPWORDS or w in _NAMING_WORDS for w in words)


@dataclass(frozen=True)
class NamedDay:
    """A day the question names, where it ends in the question, and the range of days it means."""

    end: int
    date_from: date
    date_to: date | None


def named_days(text: str) -> list[NamedDay]:
    """The calendar days ``text`` names (month-name or ISO dates), each as a publication range:
    "on D" or a bare D is that day, "after D" the days after it, "before D" the days before it."""
    found = []
    for m in _DAY.finditer(text):
        try:
            if m.group("iso"):
                day = date.fromisoformat(m.group("iso"))
            else:
                day = date(int(m.group("year")), _MONTHS.index(m.group("month").lower()) + 1, int(m.group("day")))
        except ValueError:
            continue  # "February 30, 2023"
        rel = (m.group("rel") or "on").lower()
        if rel == "after":
            found.append(NamedDay(m.end(), day + timedelta(days=1), None))
        elif rel == "since":
            found.append(NamedDay(m.end(), day, None))
        elif rel == "before":
            found.append(NamedDay(m.end(), date.min, day - timedelta(days=1)))
        else:
            found.append(NamedDay(m.end(), day, day))
    return found


def _dated(mention: Mention) -> list[Mention]:
    """A mention with the days its clause names: one day narrows it; two or more ("TechCrunch
    reported X on November 6, 2023, and then Y on December 15, 2023") make one part per day, each
    with the clause up to its day (the last keeps the rest)."""
    days = named_days(mention.clause)
    if not days:
        return [mention]
    if len(days) == 1:
        return [replace(mention, date_from=days[0].date_from, date_to=days[0].date_to)]
    parts, begin = [], 0
    for i, day in enumerate(days):
        end = len(mention.clause) if i == len(days) - 1 else day.end
        parts.append(replace(mention, clause=mention.clause[begin:end], date_from=day.date_from, date_to=day.date_to))
        begin = end
    return parts


@dataclass(frozen=True)
class Mention:
    """One mention of an indexed source, with the clause of the question that belongs to it: from
    the mention to the next one (the first also takes what comes before it)."""

    source: str
    clause: str
    # The publication days the clause names ("the report published on October 6, 2023", "after
    # November 6, 2023"): retrieval for this mention prefers documents from that range.
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class NamedParts:
    """The sources a question names: those the index has, and those it does not."""

    known: tuple[str, ...] = ()  # indexed source names, in order of first mention
    mentions: tuple[Mention, ...] = ()  # every mention of an indexed source (one outlet may be named twice)
    unknown: tuple[str, ...] = ()  # names introduced as a publication that no indexed document has

    @property
    def named(self) -> int:
        return max(len(self.known), len(self.mentions)) + len(self.unknown)

    @property
    def missing_share(self) -> float:
        """Share of the named sources that the index does not have (0 when none are named)."""
        return len(self.unknown) / self.named if self.named else 0.0


def source_aliases(source: str) -> list[str]:
    """Spellings a question may use for ``source``, longest first."""
    names = {source.strip(), _SPLIT.split(source.strip())[0].strip()}
    for name in list(names):
        if name.lower().startswith("the "):
            names.add(name[4:])
    return sorted((n for n in names if len(n) >= 2), key=len, reverse=True)


def _norm(name: str) -> str:
    name = name.strip("'\" ").lower()
    name = re.sub(r"'s$", "", name)
    return name[4:] if name.startswith("the ") else name


@functools.lru_cache(maxsize=8)
def _alias_pattern(sources: frozenset[str]) -> tuple[re.Pattern[str], dict[str, tuple[str, str]]]:
    """One pattern for every spelling of every source, longest first (built once per set of
    sources, not per question), and lower-cased spelling -> (spelling, source)."""
    source_of: dict[str, tuple[str, str]] = {}
    for source in sorted(sources):
        for alias in source_aliases(source):
            source_of.setdefault(alias.lower(), (alias, source))
    spellings = sorted((alias for alias, _ in source_of.values()), key=lambda a: (-len(a), a))
    alternation = "|".join(re.escape(a) for a in spellings) or "(?!)"
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.I), source_of


def named_parts(question: str, sources: Iterable[str]) -> NamedParts:
    """Which indexed ``sources`` the question names, and which publications it names that are not indexed.

    Args:
        question: the user's question.
        sources: the distinct ``source`` values of the indexed documents.
    """
    pattern, source_of = _alias_pattern(frozenset(sources))
    spans: list[tuple[int, int, str]] = []
    for m in pattern.finditer(question):
        alias, source = source_of[m.group(0).lower()]
        if alias[:1].isupper() and not m.group(0)[:1].isupper():
            continue  # "a fortune" is not Fortune; "CNBC" is Cnbc
        spans.append((m.start(), m.end(), source))
    spans.sort()
    known = tuple(dict.fromkeys(s for _, _, s in spans))
    # Each mention's clause runs to the next mention; one that says nothing of its own ("Do the
    # TechCrunch and ") shares the claim that follows, up to the end of the next clause that does.
    ends = [spans[i + 1][0] if i + 1 < len(spans) else len(question) for i in range(len(spans))]
    for i in reversed(range(len(spans) - 1)):
        start, end, _ = spans[i]
        before = question[:start] if i == 0 else ""  # the first clause also takes what comes before it
        if _says_nothing(before + " " + question[end : ends[i]]):
            ends[i] = ends[i + 1]
    mentions = tuple(
        dated
        for i, (start, _, source) in enumerate(spans)
        for dated in _dated(Mention(source=source, clause=question[0 if i == 0 else start : ends[i]]))
    )
    known_norm = {_norm(a) for s in known for a in source_aliases(s)}
    unknown: list[str] = []
    for pattern in (_INTRODUCED, _BEFORE_NOUN):
        for m in pattern.finditer(question):
            name = m.group("name").strip("'\" ")
            if _NOT_A_NAME.match(name):
                continue
            if any(m.start("name") < e and s < m.end("name") for s, e, _ in spans):
                continue  # overlaps an indexed source's mention
            if _norm(name) in known_norm or _norm(name) in {_norm(u) for u in unknown}:
                continue
            unknown.append(name)
    return NamedParts(known=known, mentions=mentions, unknown=tuple(unknown))
