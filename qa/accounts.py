"""Answers made of several accounts: one line per source, each with its own citations.

Three shapes share this: sources that state different outcomes (the sample corpus's "who controls
the town?"), sources whose best sentences give different answer phrases to a factoid question ("who
acquired WhatsApp?": Facebook in some passages, Apple in others), and questions that name their
sources ("does the Fortune article ..., while The Verge ...?"), answered part by part.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from qa.citations import Citation, cite_span
from qa.evidence import Evidence
from qa.types import ConflictSide

_PUNCT = str.maketrans(string.punctuation + "’‘“”", " " * (len(string.punctuation) + 4))
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def make_citation(n: int, ev: Evidence) -> Citation:
    return cite_span(n, ev.chunk, ev.start, ev.end)


LABEL_CHARS = 60


def source_label(ev: Evidence) -> str:
    """"Global News (2017-11-19)": the source, else the title (shortened), and the date."""
    chunk = ev.chunk
    who = chunk.source or chunk.title or chunk.doc_id
    if len(who) > LABEL_CHARS:
        who = who[: LABEL_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f"{who} ({chunk.published_at or 'undated'})"


def phrase_key(text: str) -> tuple[str, ...]:
    """Words of an answer phrase for comparing phrases: lower case, no punctuation or articles."""
    return tuple(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def same_phrase(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """"Facebook" and "Facebook Inc" name the same thing; "December 2015" and "December 2005" do not."""
    if not a or not b:
        return False
    shorter, longer = (a, b) if len(a) <= len(b) else (b, a)
    return all(word in longer for word in shorter)


@dataclass
class Account:
    """One source's (or one answer phrase's) sentences, best first."""

    evidence: list[Evidence]
    phrase: str | None = None
    label: str | None = None  # overrides the source label (a named source's own name)


@dataclass
class Rendered:
    text: str
    citations: list[Citation]
    conflicts: list[ConflictSide]


def render_accounts(header: str, accounts: Sequence[Account], *, as_conflict: bool) -> Rendered:
    """``header`` then one line per account: ``- [phrase: ]source (date): sentence [n] ...``."""
    citations: list[Citation] = []
    lines: list[str] = []
    conflicts: list[ConflictSide] = []
    for account in accounts:
        evs = sorted(account.evidence, key=lambda e: e.start)
        numbers, parts = [], []
        for ev in evs:
            citation = make_citation(len(citations) + 1, ev)
            citations.append(citation)
            numbers.append(citation.n)
            parts.append(f"{ev.text} [{citation.n}]")
        chunk = evs[0].chunk
        label = source_label(evs[0]) if account.label is None else account.label
        lead = f"{account.phrase}: " if account.phrase else ""
        lines.append(f"- {lead}{label}: " + " ".join(parts))
        if as_conflict:
            conflicts.append(
                ConflictSide(
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    source=chunk.source,
                    published_at=chunk.published_at,
                    statement=" ".join(ev.text for ev in evs),
                    citations=tuple(numbers),
                    answer=account.phrase,
                )
            )
    return Rendered(text=header + "\n" + "\n".join(lines), citations=citations, conflicts=conflicts)


def older_first(accounts: Sequence[Account]) -> list[Account]:
    """Older reports first, undated ones before dated ones (they usually come from earlier coverage)."""
    return sorted(accounts, key=lambda a: (a.evidence[0].chunk.published_at or "", a.evidence[0].chunk.doc_id))
