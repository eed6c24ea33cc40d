"""Reading a question: is it factoid, and what kind of answer does it ask for?

The first wh-word decides whether a question asks for a short fact; the wh-word and, for
"what/which X", the head noun X say which spaCy entity labels an answer should carry; the
wh-phrase's dependency slot ("What did Luther call for?": the object of "for" under "call") is what
an answer should fill in the sentence. Words are matched by their Snowball stem.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import Stemmer

_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})
NUMBER_LABELS = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME")
PERSON_LABELS = ("PERSON",)
ORG_LABELS = ("ORG",)
PLACE_LABELS = ("GPE", "LOC", "FAC")
TIME_LABELS = ("DATE", "TIME")

# The head noun of "what/which X" names the kind of answer. A short list of the commonest kinds in
# questions; any other X falls back to noun chunks (and entities) near the question's words.
_HEAD_LABELS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("year date day month century decade era period season age").split(), TIME_LABELS),
    **dict.fromkeys(("time", "hour"), ("TIME", "DATE")),
    **dict.fromkeys(
        (
            "person man woman researcher scientist king queen emperor president leader author writer player actor "
            "artist inventor founder general pope ruler physicist philosopher composer architect engineer "
            "explorer politician minister professor coach governor mayor chancellor director son daughter father "
            "mother wife husband brother sister"
        ).split(),
        PERSON_LABELS + ("NORP",),
    ),
    **dict.fromkeys(
        (
            "company organization organisation group team party agency university school college institution "
            "network firm corporation band league club newspaper channel station broadcaster church government "
            "body court council army"
        ).split(),
        ORG_LABELS,
    ),
    **dict.fromkeys(
        (
            "city country state nation town region place area province county island continent location capital "
            "village territory river mountain sea ocean lake district site port"
        ).split(),
        PLACE_LABELS,
    ),
    **dict.fromkeys(("nationality", "religion", "ethnicity", "people"), ("NORP",)),
    "language": ("LANGUAGE", "NORP"),
    **dict.fromkeys(
        (
            "number percentage percent amount population temperature size distance cost price length height "
            "weight speed total share proportion"
        ).split(),
        NUMBER_LABELS,
    ),
}
# "the name of X", "what kind of X": the kind is X.
_LIGHT_HEADS = frozenset({"name", "kind", "type", "sort", "form", "term", "title", "one"})

_WH = re.compile(r"\b(?P<word>who|whom|whose|what|which|when|where|why|how)\b(?:\s+(?P<next>\w+))?", re.I)
_HOW_NUMBER = frozenset({"many", "much", "long", "old", "far", "large", "big", "tall", "high", "often", "fast"})
_AUXILIARIES = frozenset(
    "did do does was were is are had has have will would can could should might may must shall".split()
)
# "Who is Rakan Said?" asks for a description of a name, not for a phrase.
_DEFINITION = re.compile(
    r"^\s*(?:who|what)\s+(?:is|was|are|were)\s+(?:the\s+)?[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*)*\s*\??\s*$"
)
_NOT_FACTOID = re.compile(r"^\s*(explain|describe|discuss|compare|summari[sz]e)\b", re.I)
# "Does the article on X, which focuses on Y, ...?" asks yes or no: after an opening auxiliary a
# wh-word starts a relative clause, it does not ask for a phrase.
_YES_NO = re.compile(rf"^\s*(?:{'|'.join(sorted(_AUXILIARIES))})\b", re.I)


@dataclass(frozen=True)
class AnswerType:
    """What a factoid question asks for.

    ``labels``: spaCy entity labels wanted, best first (empty: any entity or noun chunk);
    ``number``: a count or amount is wanted (the phrase must hold a number);
    ``head``: the head noun of "what/which X", lower-cased, when there is one.
    """

    labels: tuple[str, ...]
    number: bool = False
    head: str | None = None


def _first_wh(question: str) -> tuple[str, str] | None:
    """The question's own wh-word and the word after it. A "when"/"where" that opens a clause
    ("..., what did he do when he lost?") is skipped: as a question word an auxiliary follows it
    ("when did", "where was") or it ends the question."""
    for match in _WH.finditer(question):
        word, after = match["word"].lower(), (match["next"] or "").lower()
        if word in ("when", "where") and after and after not in _AUXILIARIES:
            continue
        return word, after
    return None


def is_factoid(question: str) -> bool:
    """Does ``question`` ask for a short fact (who/what/which/when/where/how many/how much ...)?

    No model: the first wh-word decides. "why", a bare "how" (manner), yes/no questions (those
    that open with an auxiliary, whatever wh-word follows) and requests to explain or describe
    are not factoid.
    """
    if _NOT_FACTOID.search(question) or _DEFINITION.match(question) or _YES_NO.match(question):
        return False
    wh = _first_wh(question)
    if wh is None:
        return False
    word, after = wh
    if word == "why":
        return False
    if word == "how":
        return after in _HOW_NUMBER
    return True


_STEMMER = Stemmer.Stemmer("english")
_STEMMER_LOCK = threading.Lock()  # a PyStemmer object is not safe to share between threads


@functools.lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    """How a word is matched between question and sentence: its lower-cased Snowball stem."""
    with _STEMMER_LOCK:
        return str(_STEMMER.stemWord(word.lower()))


def _answer_type(question: str, qdoc: Any) -> AnswerType | None:
    wh = _first_wh(question)
    if wh is None:
        return None
    word, after = wh
    if word in ("who", "whom"):
        return AnswerType(labels=PERSON_LABELS + ORG_LABELS + ("NORP", "GPE"))
    if word == "when":
        return AnswerType(labels=TIME_LABELS)
    if word == "where":
        return AnswerType(labels=PLACE_LABELS + ORG_LABELS)
    if word == "how":
        if after in ("many", "much", "long", "old", "far", "large", "big", "tall", "high", "fast", "often"):
            head = _head_noun(qdoc) if after in ("many", "much") else None
            labels: tuple[str, ...] = ("MONEY", "QUANTITY", "PERCENT", "CARDINAL") if after == "much" else NUMBER_LABELS
            if after in ("long", "old", "often"):
                labels = ("DATE", "TIME", "QUANTITY", "CARDINAL")
            elif after in ("far", "large", "big", "tall", "high", "fast"):
                labels = ("QUANTITY", "CARDINAL", "PERCENT")
            return AnswerType(labels=labels, number=True, head=head)
        return None
    if word == "why":
        return None
    head = _head_noun(qdoc)
    if word == "whose":
        return AnswerType(labels=PERSON_LABELS + ORG_LABELS, head=head)
    if head is not None and head in _HEAD_LABELS:
        labels = _HEAD_LABELS[head]
        return AnswerType(labels=labels, number=labels == NUMBER_LABELS, head=head)
    return AnswerType(labels=(), head=head)


def _head_noun(qdoc: Any) -> str | None:
    """The noun a wh-determiner modifies ("what year", "which European city", "how many days"),
    following light nouns ("the name of the company" -> company)."""
    for token in qdoc:
        if token.lower_ not in ("what", "which", "whose", "many", "much"):
            continue
        head = token.head
        if token.lower_ in ("many", "much") and head.lower_ == "how":
            continue
        if token.dep_ in ("det", "amod", "poss", "nummod") and head.tag_ in _NOUN_TAGS and head.i > token.i:
            return _follow_light(head).lower_
        if token.dep_ in ("nsubj", "attr", "dobj", "nsubjpass", "pobj"):
            # "what is the name of the river ...": what -> is <- name
            for child in token.head.children:
                if child.dep_ in ("attr", "nsubj", "nsubjpass") and child.i != token.i and child.tag_ in ("NN", "NNS"):
                    if child.lower_ in _LIGHT_HEADS:
                        return _follow_light(child).lower_
                    return None
            return None
    return None


def _follow_light(noun: Any) -> Any:
    if noun.lower_ not in _LIGHT_HEADS:
        return noun
    for prep in noun.children:
        if prep.dep_ == "prep" and prep.lower_ == "of":
            for obj in prep.children:
                if obj.dep_ == "pobj":
                    return obj
    return noun


_BE = frozenset({"is", "was", "are", "were", "be", "been", "being", "'s"})
# Dependency roles that say the same thing in active and passive voice ("X built Y" / "Y was built by X").
_SAME_ROLE = {"dobj": "nsubjpass", "nsubjpass": "dobj", "nsubj": "agent", "agent": "nsubj"}


@dataclass(frozen=True)
class _Role:
    """Where the wh-phrase sits in the question: its relation to a governing word ("What did Luther
    call for?" -> pobj of "for" under "call"). The answer tends to fill the same slot in the sentence."""

    relation: str  # dependency label, or "prep:<word>" for the object of a preposition
    governor: str  # stem of the governing word; "be" for a copula


def _slot(token: Any) -> _Role | None:
    """The slot ``token`` fills under its governor (through a preposition when it is its object)."""
    if token.dep_ == "appos":  # "the commander, Jan Kowalski, was killed"
        token = token.head
    if token.dep_ == "pobj":
        prep = token.head
        relation = "agent" if prep.dep_ == "agent" else f"prep:{prep.lower_}"
        governor = prep.head
    elif token.dep_ in ("nsubj", "nsubjpass", "dobj", "attr", "dative", "oprd"):
        relation, governor = token.dep_, token.head
    else:
        return None
    if governor.i == token.i:
        return None
    return _Role(relation, "be" if governor.lower_ in _BE else _norm(governor.text))


def _question_role(qdoc: Any) -> _Role | None:
    for token in qdoc:
        if token.lower_ in ("what", "which", "who", "whom"):
            target = token.head if token.dep_ == "det" else token
            return _slot(target)
    return None


def _fills(role: _Role, slot: _Role | None) -> bool:
    if slot is None or slot.governor != role.governor:
        return False
    if role.governor == "be":  # "What is X?" / "X is a phylum": either side of the copula
        return slot.relation in ("attr", "nsubj")
    return slot.relation == role.relation or _SAME_ROLE.get(role.relation) == slot.relation


def _question_words(qdoc: Any) -> set[str]:
    return {_norm(t.text) for t in qdoc if not (t.is_stop or t.is_punct or t.tag_ in ("WDT", "WP", "WRB", "WP$"))}


def _content(tokens: Iterable[Any]) -> list[str]:
    # spaCy counts "two", "four" ... as stop words; in an answer they are the answer.
    return [_norm(t.text) for t in tokens if t.like_num or not (t.is_stop or t.is_punct)]
