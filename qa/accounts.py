"""Answers made of several accounts: one line per source, each with its own citations.

Three shapes share this: sources that state different outcomes (the sample corpus's "who controls
the town?"), sources whose best sentences give different answer phrases to a factoid question ("who
acquired WhatsApp?": Facebook in some passages, Apple in others), and questions that name their
sources ("does the Fortune article ..., while The Verge ...?"), answered part by part.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from qa.citations import Citation, cite_span
from qa.evidence import Evidence
from qa.types import ConflictSide

SIDE_SECOND_MARGIN = 0.05  # a side's second sentence must score within this of its first
PHRASE_SENTENCES = 6  # sentences looked at for other documents' answer phrases
DUPLICATE_SIMILARITY = 0.92
Phrases = Mapping[int, tuple[str, int, int]]  # id(evidence) -> (phrase, start, end in the sentence)
_PUNCT = str.maketrans(string.punctuation + "’‘“”", " " * (len(string.punctuation) + 4))
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def make_citation(n: int, ev: Evidence) -> Citation:
    return cite_span(n, ev.chunk, ev.start, ev.end)


LABEL_CHARS = 60


def source_label(ev: Evidence) -> str:
    """ "Global News (2017-11-19)": the source, else the title (shortened), and the date."""
    chunk = ev.chunk
    who = chunk.source or chunk.title or chunk.doc_id
    if len(who) > LABEL_CHARS:
        who = who[: LABEL_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return f"{who} ({chunk.published_at or 'undated'})"


def phrase_key(text: str) -> tuple[str, ...]:
    """Words of an answer phrase for comparing phrases: lower case, no punctuation or articles."""
    return tuple(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def same_phrase(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """ "Facebook" and "Facebook Inc" name the same thing; "December 2015" and "December 2005" do not."""
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
        # The answer phrase first, marked with its citation, so the gist is read before the sources.
        lead = f"{account.phrase} [{numbers[0]}] — " if account.phrase else ""
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


def outcome_sides(evidence: list[Evidence], best: Evidence, *, floor: float) -> dict[str, list[Evidence]]:
    """Per document, its sentences scoring at least ``floor`` that restate no other document's."""
    sides: dict[str, list[Evidence]] = {}
    for ev in evidence:
        if ev.score < floor:
            break
        doc_sides = sides.setdefault(ev.chunk.doc_id, [])
        # A side's second sentence must be nearly as strong as its first.
        if doc_sides and (len(doc_sides) >= 2 or ev.score < doc_sides[0].score - SIDE_SECOND_MARGIN):
            continue
        if not any(restates(ev, o) for side in sides.values() for o in side):
            doc_sides.append(ev)
    return {doc: evs for doc, evs in sides.items() if evs}


def phrase_pool(
    evidence: list[Evidence], part_evidence: Sequence[tuple[str, Evidence]], *, margin: float
) -> list[Evidence]:
    """The sentences whose answer phrases are compared: the best one, other documents' sentences
    scoring within ``margin`` of it (a different phrase there is a conflict), and the best sentence
    of each part of a question that names its sources."""
    best = evidence[0]
    pool, docs = [best], {best.chunk.doc_id}
    for ev in evidence[1:PHRASE_SENTENCES]:
        if ev.score >= best.score - margin and (ev.chunk.doc_id not in docs or len(pool) < 2):
            pool.append(ev)
            docs.add(ev.chunk.doc_id)
    return pool + [top for _, top in part_evidence if all(top is not ev for ev in pool)]


def phrase_groups(evidence: list[Evidence], best: Evidence, phrases: Phrases, *, floor: float) -> list[Account]:
    """Sentences scoring at least ``floor`` grouped by the answer phrase they give; two or more
    groups from different documents mean the documents answer differently (else: [])."""
    if id(best) not in phrases:
        return []
    groups: list[tuple[tuple[str, ...], Account]] = []
    for ev in evidence[:PHRASE_SENTENCES]:
        if id(ev) not in phrases or ev.score < floor:
            continue
        key = phrase_key(phrases[id(ev)][0])
        match = next((account for k, account in groups if same_phrase(k, key)), None)
        if match is None:
            groups.append((key, Account(evidence=[ev], phrase=phrases[id(ev)][0])))
        elif all(e.chunk.doc_id != ev.chunk.doc_id for e in match.evidence) and len(match.evidence) < 2:
            match.evidence.append(ev)
    docs = [{e.chunk.doc_id for e in account.evidence} for _, account in groups]
    # Different documents must give the different phrases (one text naming two things is no conflict).
    if len(groups) < 2 or len(set().union(*docs)) < 2:
        return []
    return [account for _, account in groups]


def most_given_phrase(evidence: Sequence[Evidence], phrases: Phrases) -> tuple[Evidence, tuple[str, int, int]] | None:
    """The answer phrase most of ``evidence`` gives (the first on a tie), with a sentence giving it."""
    votes: list[tuple[tuple[str, ...], list[Evidence]]] = []
    for ev in evidence:
        if id(ev) in phrases:
            key = phrase_key(phrases[id(ev)][0])
            group = next((evs for k, evs in votes if same_phrase(k, key)), None)
            if group is None:
                votes.append((key, [ev]))
            else:
                group.append(ev)
    if not votes:
        return None
    top = max(votes, key=lambda kv: len(kv[1]))[1][0]
    return top, phrases[id(top)]


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in ("the", "a", "an")}


_KEY_TOKEN = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][\w'-]*|\d[\d.,]*")


def key_tokens(text: str) -> set[str]:
    """Names (capitalised words past the sentence start) and numbers: what a copy that says
    something else changes ("Emma Raducanu won ..." / "Bianca Andreescu won ...")."""
    return {t.rstrip(".,").lower() for t in _KEY_TOKEN.findall(text.strip())}


def restates(a: Evidence, b: Evidence) -> bool:
    """Restatements: one sentence's words mostly inside the other's (a teaser and its full
    sentence), or nearly the same vector; never two sentences that name different people,
    places or numbers, which is what a report contradicting another looks like."""
    ka, kb = key_tokens(a.text), key_tokens(b.text)
    if not (ka <= kb or kb <= ka):
        return False
    wa, wb = _words(a.text), _words(b.text)
    shorter = min(len(wa), len(wb)) or 1
    if len(wa & wb) / shorter >= 0.85:
        return True
    return float(np.dot(a.vector, b.vector)) >= DUPLICATE_SIMILARITY
