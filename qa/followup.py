"""Follow-up resolution: a question that leans on earlier turns gets their context before retrieval.

"Who reported that?" or "And how many died?" say little on their own. When a question looks like a
follow-up (short, or starting with "and"/"what about", or pointing back with "that", "it", "he"...),
the previous user question and the start of the previous answer are appended to it. A question that
stands on its own is left alone, so changing the subject works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.types import Message

_POINTERS = re.compile(
    r"\b(that|this|these|those|it|its|he|him|his|she|her|they|them|their|there|then|the same|the town|the city"
    r"|the group|the report|the article)\b",
    re.I,
)
_CONTINUATIONS = re.compile(r"^\s*(and|but|also|so|then|what about|how about)\b", re.I)
_MARKERS = re.compile(r"\s*\[\d+\]")
_CONTENT_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
SHORT_QUESTION_WORDS = 3
ANSWER_CONTEXT_CHARS = 300


def is_followup(question: str) -> bool:
    """Heuristic: does this question need earlier turns to be understood?"""
    words = _CONTENT_WORD.findall(question)
    return len(words) <= SHORT_QUESTION_WORDS or bool(_CONTINUATIONS.search(question) or _POINTERS.search(question))


def _previous_user(history: Sequence[Message]) -> str:
    return next((m.content for m in reversed(history) if m.role == "user" and m.content.strip()), "")


def retrieval_query(question: str, history: Sequence[Message]) -> str:
    """What to retrieve for ``question``: "Who reported that?" asks who stated the answer to the
    previous question, so that question; otherwise :func:`resolve_followup`."""
    if history and asks_for_source(question) and _previous_user(history).strip():
        return _previous_user(history).strip()
    return resolve_followup(question, history)


def resolve_followup(question: str, history: Sequence[Message]) -> str:
    """Return the retrieval query for ``question`` given the conversation so far."""
    if not history or not is_followup(question):
        return question
    previous_user = _previous_user(history)
    previous_answer = next((m.content for m in reversed(history) if m.role == "assistant" and m.content.strip()), "")
    # Only the answer's first lines: its reference list would drag in every cited passage.
    answer_context = _MARKERS.sub("", previous_answer.split("\n\n")[0])[:ANSWER_CONTEXT_CHARS]
    parts = [question, previous_user, answer_context]
    return " ".join(p.strip() for p in parts if p.strip())


_ASKS_SOURCE = re.compile(
    r"^\s*(?:and\s+)?(?:who|which\s+(?:source|outlet|paper|newspaper|site|publication|media|article|report)s?)\s+"
    r"(?:has\s+|had\s+|first\s+)?(?:reported|reports|said|says|wrote|writes|published|claimed|claims|stated|states"
    r"|covered)\b|^\s*(?:what|which) (?:is|was|are|were) the sources?\b|^\s*where (?:was|is) (?:that|this|it) "
    r"(?:reported|published)\b",
    re.I,
)


_BACK_POINTERS = frozenset(
    "that this it so these those them the claim claims story report news first originally initially".split()
)


def asks_for_source(question: str) -> bool:
    """ "Who reported that?", "Which outlet said so?": who stated the previous answer. A question
    that names what was said ("Who reported the mortar attack?") is an ordinary question."""
    match = _ASKS_SOURCE.search(question)
    if match is None:
        return False
    rest = re.findall(r"[\w']+", question[match.end() :].lower())
    return all(word in _BACK_POINTERS for word in rest)
