"""The shapes an extractive answer takes once the evidence is chosen: the best sentences cited, accounts
side by side, one line per named source, "Reported by:", and the refusal.

Split out of :mod:`qa.answer`, which decides which shape a question gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from qa.accounts import Account, make_citation, most_given_phrase, older_first, render_accounts, restates
from qa.citations import Citation
from qa.evidence import Evidence
from qa.parts import NamedParts
from qa.types import Answer

REFUSAL_TEXT = "The indexed documents do not answer this."
MAX_SENTENCES = 3
FOLLOW_MARGIN = 0.10  # extra sentences must score within this of the best one
# Sentences weaker than this are never quoted beside the best one (nor as a side of a conflict).
EVIDENCE_FLOOR = 0.43
SIDE_RATIO = 0.6  # another document's sentence counts as a side when it reaches this share of the best
COMPARISON_NOTE = "Weighing these accounts against each other needs the LLM answerer (answerer: llm)."


Phrase = tuple[str, int, int]  # an answer phrase: text, start and end in its sentence
NameExpander = Callable[[Evidence, Phrase], "tuple[Evidence, Phrase] | None"]


def set_phrase(result: Answer, ev: Evidence, phrase: Phrase) -> None:
    """Give the answer its lead phrase, with offsets into the document (a span of ``ev``)."""
    text, start, end = phrase
    result.answer = text
    result.answer_doc_id = ev.chunk.doc_id
    result.answer_start, result.answer_end = ev.start + start, ev.start + end


def lead_with(result: Answer, ev: Evidence, phrase: Phrase, *, expand: NameExpander | None = None) -> None:
    """Put the answer phrase (a span of ``ev``, already cited) before ``result.text``, cited. With
    ``expand``, a fuller form of a name that the document gives ("Sam Altman" for "Altman") leads
    instead, cited to its own sentence (added to the citations when it is not one of them)."""
    named = expand(ev, phrase) if expand is not None else None
    if named is not None:
        ev, phrase = named
    n = next((c.n for c in result.citations if c.doc_id == ev.chunk.doc_id and c.start == ev.start), None)
    if n is None:
        n = len(result.citations) + 1
        result.citations.append(make_citation(n, ev))
    result.text = f"{phrase[0]} [{n}]. " + result.text
    set_phrase(result, ev, phrase)


def fill(result: Answer, header: str, accounts: list[Account], *, conflict: bool) -> Answer:
    """The answer as accounts under a header (side by side when ``conflict``)."""
    rendered = render_accounts(header, accounts, as_conflict=conflict)
    result.text, result.citations, result.conflicts = rendered.text, rendered.citations, rendered.conflicts
    return result


def by_named_source(
    result: Answer,
    part_evidence: list[tuple[str, Evidence]],
    phrases: Mapping[int, tuple[str, int, int]],
    *,
    factoid: bool,
    expand: NameExpander | None = None,
) -> Answer:
    """One line per mention of a named source; a factoid question leads with the phrase most give
    (``expand``: see :func:`lead_with`)."""
    accounts = [Account(evidence=[ev]) for _, ev in part_evidence]  # each from its named source
    lead = most_given_phrase([account.evidence[0] for account in accounts], phrases) if factoid else None
    header = (
        "What each source named in the question says:"
        if factoid
        else ("What each source named in the question says. " + COMPARISON_NOTE)
    )
    fill(result, header, accounts, conflict=False)
    if lead is not None:
        lead_with(result, *lead, expand=expand)
    if not factoid:
        result.notice = " ".join(filter(None, [result.notice, COMPARISON_NOTE]))
    return result


def reported_by(result: Answer, evidence: list[Evidence], best: Evidence) -> Answer:
    """ "Who reported that?": the sources whose sentences state the earlier claim."""
    floor = max(EVIDENCE_FLOOR, SIDE_RATIO * best.score)
    accounts: dict[str, Account] = {}
    for ev in evidence:
        if ev.score < floor:
            break
        accounts.setdefault(ev.chunk.doc_id, Account(evidence=[ev]))
    return fill(result, "Reported by:", older_first(list(accounts.values())), conflict=False)


def choose_sentences(evidence: list[Evidence], best: Evidence) -> list[Evidence]:
    """The best sentence and up to MAX_SENTENCES - 1 close ones that do not restate it."""
    chosen = [best]
    for ev in evidence[1:]:
        if len(chosen) >= MAX_SENTENCES or ev.score < best.score - FOLLOW_MARGIN or ev.score < EVIDENCE_FLOOR:
            break
        if not any(restates(ev, other) for other in chosen):
            chosen.append(ev)
    return chosen


def refusal(
    question: str,
    query: str,
    evidence: list[Evidence],
    probability: float,
    signals: dict[str, float],
    parts: NamedParts,
    *,
    answerer: str,
) -> Answer:
    """The refusal, with the nearest passages of up to three documents as "see also"."""
    see_also: list[Citation] = []
    docs: set[str] = set()
    for ev in evidence:
        if ev.chunk.doc_id in docs:
            continue
        docs.add(ev.chunk.doc_id)
        see_also.append(make_citation(len(see_also) + 1, ev))
        if len(see_also) == 3:
            break
    return Answer(
        question=question,
        query=query,
        text=REFUSAL_TEXT,
        citations=[],
        refused=True,
        answerer=answerer,
        see_also=see_also,
        score=round(probability, 4),
        signals=signals,
        notice=missing_parts_notice(parts),
    )


def missing_parts_notice(parts: NamedParts) -> str | None:
    """What the answer says about named publications no indexed document comes from."""
    if not parts.unknown:
        return None
    names = ", ".join(parts.unknown)
    return f"No indexed document comes from {names}, which the question names."
