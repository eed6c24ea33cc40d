"""Short answers: the answer phrase (a name, a number with its unit, a date) inside an evidence sentence.

For a factoid question (who/what/which/when/where/how many/how much) the answerer leads with a phrase
taken verbatim from its best evidence sentence. Candidates are spaCy's named entities and noun chunks;
the question's wh-word (and for "what/which X" the head noun X) says which entity labels are wanted,
and among those the candidate nearest to the question's own words in the sentence wins (the classic
SQuAD sliding-window heuristic). A candidate made of the question's own words is context, not the
answer, and is never returned.

What the question asks for is read in :mod:`qa.questions`; the spaCy pipeline (hash-checked,
offline) comes from :mod:`qa.nlp`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from qa.nlp import DEFAULT_MODEL, load_verified_pipeline
from qa.questions import (
    _HEAD_LABELS,
    _NOUN_TAGS,
    NUMBER_LABELS,
    TIME_LABELS,
    AnswerType,
    _answer_type,
    _content,
    _fills,
    _norm,
    _question_role,
    _question_words,
    _Role,
    _slot,
    is_factoid,
)

MIN_SCORE = 0.55  # below this the answerer quotes the sentence alone
NEAR_WINDOW = 4.0  # tokens: how fast closeness to the question's words decays


@dataclass(frozen=True)
class Phrase:
    """An answer phrase inside one sentence: ``sentence[start:end] == text``."""

    start: int
    end: int
    text: str
    label: str  # spaCy entity label, or "NP" for a noun chunk
    score: float  # confidence in [0, 1]


@dataclass
class _Candidate:
    first: int  # token index of the first token
    last: int  # token index past the last token
    label: str
    kind: float  # how well its label fits the answer type, in [0, 1]


class PhraseExtractor:
    """Loads the spaCy pipeline once (hash-verified, offline), thread-safe for reads."""

    def __init__(self, *, model: str = DEFAULT_MODEL) -> None:
        self.model = model
        self.nlp = load_verified_pipeline(model)
        self.min_score = MIN_SCORE  # the bench lowers it to see the whole score range
        # spaCy does not promise thread safety; one call at a time (a call takes milliseconds).
        self._lock = threading.Lock()

    def _parse_question(self, question: str) -> Any:
        return self.nlp(question, disable=["ner"])

    def answer_type(self, question: str) -> AnswerType | None:
        """What ``question`` asks for; None when it is not a factoid question (why/how/yes-no/explain)."""
        if not is_factoid(question):
            return None
        with self._lock:
            doc = self._parse_question(question)
        return _answer_type(question, doc)

    def extract(self, question: str, sentences: list[str], *, min_score: float | None = None) -> list[Phrase | None]:
        """The answer phrase in each sentence (None where there is no confident one).

        Args:
            question: the user's question.
            sentences: evidence sentences; all are parsed in one batch.
            min_score: confidence a phrase needs (default ``self.min_score``).

        Returns:
            one entry per sentence, in order; all None for a non-factoid question.
        """
        if not sentences or not is_factoid(question):
            return [None] * len(sentences)
        with self._lock:
            # One batch for question and sentences: cheaper than two passes, although the
            # question's entities are never read.
            qdoc, *docs = self.nlp.pipe([question, *sentences])
        wanted = _answer_type(question, qdoc)
        if wanted is None:
            return [None] * len(sentences)
        asked = _question_words(qdoc)
        role = _question_role(qdoc)
        return [
            _best_phrase(doc, sentence, wanted, asked, role, self.min_score if min_score is None else min_score)
            for doc, sentence in zip(docs, sentences, strict=True)
        ]


_NAMING = frozenset({"appos", "compound", "attr", "nsubj"})


def _names(span: Any, nouns: set[int]) -> bool:
    """Does ``span`` name one of the ``nouns`` tokens: in apposition ("the fraternity, Alpha Phi Omega"),
    as a compound ("the river Rhine"), across a copula ("Warsaw is the city"), or "the city of Warsaw"?"""
    root = span.root
    if root.head.i in nouns and root.dep_ in _NAMING:
        return True
    if root.dep_ == "pobj" and root.head.lower_ == "of" and root.head.head.i in nouns:
        return True
    for i in nouns:
        noun = span.doc[i]
        if span.start <= noun.head.i < span.end and noun.dep_ in _NAMING:
            return True
        if noun.dep_ == "attr" and root.dep_ == "nsubj" and noun.head.i == root.head.i:
            return True
    return False


def _linked(doc: Any, first: int, last: int, anchors: set[int]) -> bool:
    """Is the span a dependent or the governor of an anchor token outside it (one arc, or two
    through a preposition: "founded by X", "the city of X")?"""
    for token in doc[first:last]:
        head = token.head
        if head.i < first or head.i >= last:
            if head.i in anchors or (head.dep_ == "prep" and head.head.i in anchors):
                return True
        for child in token.children:
            if (child.i < first or child.i >= last) and child.i in anchors:
                return True
    return False


def _candidates(doc: Any, wanted: AnswerType) -> list[_Candidate]:
    head = _norm(wanted.head) if wanted.head else None
    time_head = wanted.head is not None and _HEAD_LABELS.get(wanted.head) == TIME_LABELS
    found: list[_Candidate] = []
    for ent in doc.ents:
        if ent.label_ == "ORDINAL" and "ORDINAL" not in wanted.labels:
            continue
        has_number = any(t.like_num or t.is_digit for t in ent)
        if wanted.number and not has_number:
            continue
        if ent.label_ in wanted.labels:
            kind = 1.0 - 0.05 * wanted.labels.index(ent.label_)
        elif not wanted.labels:
            kind = 0.5 if ent.label_ in NUMBER_LABELS else 0.75  # "what did X build?" asks for a thing
        else:
            kind = 0.45 if wanted.number else 0.3
        last = ent.end
        if wanted.number:
            if ent.label_ in ("CARDINAL", "QUANTITY") and last < len(doc):
                last = _unit_end(doc, ent)
            counted = {_norm(t.text) for t in doc[ent.start : last]} | {_norm(ent.root.head.text)}
            if head is not None and head in counted:
                kind = 1.0  # "how many provinces" -> "32 provinces"
            elif ent.label_ in TIME_LABELS and not time_head and wanted.labels[0] not in TIME_LABELS:
                kind = 0.5  # a year is rarely the count asked for
        if not wanted.number:
            last = _listed_end(doc, ent)
        found.append(_Candidate(ent.start, last, ent.label_, kind))
    if not wanted.number:
        taken = {i for c in found for i in range(c.first, c.last)}
        for chunk in _noun_phrases(doc):
            first = chunk.start
            while first < chunk.end - 1 and doc[first].tag_ in ("DT", "PRP$", "PDT", "WDT", "WP$"):
                first += 1
            if any(i in taken for i in range(first, chunk.end)):
                continue
            kind = 0.6 if not wanted.labels else 0.35
            found.append(_Candidate(first, chunk.end, "NP", kind))
            last = _of_end(doc, chunk)
            if last > chunk.end and not any(i in taken for i in range(chunk.end, last)):
                found.append(_Candidate(first, last, "NP", kind))  # "invasion of Britain"
    return found


_NP_DEPS = frozenset({"oprd", "nsubj", "dobj", "nsubjpass", "pcomp", "pobj", "dative", "appos", "attr", "ROOT"})


def _noun_phrases(doc: Any) -> list[Any]:
    """spaCy's English noun chunks (same rule as spacy.lang.en.syntax_iterators) read from tags
    instead of coarse POS, so the attribute ruler need not run; pronouns are left out (never an answer)."""
    spans, prev_end = [], -1
    for word in doc:
        if word.tag_ not in _NOUN_TAGS or word.left_edge.i <= prev_end:
            continue
        head = word
        if word.dep_ == "conj":
            head = word.head
            while head.dep_ == "conj" and head.head.i < head.i:
                head = head.head
        if head.dep_ in _NP_DEPS:
            prev_end = word.i
            spans.append(doc[word.left_edge.i : word.i + 1])
    return spans


def _listed_end(doc: Any, ent: Any) -> int:
    """End of a list of same-label names that starts with ``ent`` ("Bugenhagen and Melanchthon")."""
    last = ent.end
    for other in doc.ents:
        if other.start < last or other.label_ != ent.label_:
            continue
        between = doc[last : other.start]
        if not between or len(between) > 2 or not all(t.dep_ in ("cc", "punct") for t in between):
            break
        if other.root.dep_ != "conj":
            break
        last = other.end
    return last


def _of_end(doc: Any, chunk: Any) -> int:
    """End of "<chunk> of <noun phrase>" when the "of" phrase follows right after the chunk."""
    if chunk.end < len(doc) and doc[chunk.end].lower_ == "of" and doc[chunk.end].head.i == chunk.root.i:
        objects = [t for t in doc[chunk.end].children if t.dep_ == "pobj"]
        if objects:
            return objects[0].i + 1
    return chunk.end


def _unit_end(doc: Any, ent: Any) -> int:
    """Include the noun a number counts when it follows right after ("400 corpses", "3 million people")."""
    root = ent.root
    head = root.head
    if root.dep_ in ("nummod", "quantmod", "compound") and head.i >= ent.end and head.tag_ in ("NN", "NNS"):
        between = doc[ent.end : head.i]
        if all(t.dep_ in ("amod", "compound") for t in between) and head.i - ent.end <= 1:
            return head.i + 1
    return ent.end


def _best_phrase(
    doc: Any, sentence: str, wanted: AnswerType, asked: set[str], role: _Role | None, min_score: float
) -> Phrase | None:
    by_word: dict[str, list[int]] = {}
    for t in doc:
        if not (t.is_stop or t.is_punct) and _norm(t.text) in asked:
            by_word.setdefault(_norm(t.text), []).append(t.i)
    anchors = {i for positions in by_word.values() for i in positions}
    # "which city": the sentence's own "city" is where the answer hangs ("the city of Warsaw").
    head = _norm(wanted.head) if wanted.head and not wanted.number else None
    head_tokens = {t.i for t in doc if head is not None and _norm(t.text) == head}
    unit = _norm(wanted.head) if wanted.number and wanted.head else None
    best: tuple[float, _Candidate] | None = None
    for cand in _candidates(doc, wanted):
        own = [w for w in _content(doc[cand.first : cand.last]) if w != unit]
        if not own:
            continue
        repeated = sum(w in asked for w in own) / len(own)
        if repeated >= 0.5:
            continue  # an entity the question names is context, not the answer
        kind = cand.kind
        if head_tokens and _names(doc[cand.first : cand.last], head_tokens):
            kind = max(kind, 0.95)
        if by_word:
            near = sum(
                max(1.0 / (1.0 + _gap(cand, i) / NEAR_WINDOW) for i in positions) for positions in by_word.values()
            ) / len(by_word)
        else:
            near = 0.3
        linked = 1.0 if anchors and _linked(doc, cand.first, cand.last, anchors) else 0.0
        aligned = 1.0 if role is not None and _fills(role, _slot(doc[cand.first : cand.last].root)) else 0.0
        score = (0.45 * kind + 0.25 * near + 0.1 * linked + 0.2 * aligned) * (1.0 - 0.5 * repeated)
        if best is None or score > best[0]:
            best = (score, cand)
    if best is None or best[0] < min_score:
        return None
    score, cand = best
    span = doc[cand.first : cand.last]
    start, end = span.start_char, span.end_char
    return Phrase(start=start, end=end, text=sentence[start:end], label=cand.label, score=round(min(score, 1.0), 4))


def _gap(cand: _Candidate, i: int) -> int:
    """Tokens between a candidate and token ``i`` (0 when adjacent or inside)."""
    if i >= cand.last:
        return i - cand.last
    if i < cand.first:
        return cand.first - i - 1
    return 0
