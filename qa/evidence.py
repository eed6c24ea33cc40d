"""Sentence-level evidence inside retrieved passages (small-to-big), scored without re-embedding.

Each sentence already has a vector from indexing time (see index/embedding.py), so scoring a
sentence is a dot product with the query vector plus an idf-weighted term coverage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from index.lexical import STOPWORDS, BM25Index, skeleton
from index.pipeline import DocumentIndex, IndexedChunk
from qa.instructions import is_instruction
from qa.types import Passage
from qa.vocabulary import DocumentTopics, WordVectors

DENSE_WEIGHT = 0.65
COVERAGE_WEIGHT = 0.35
TYPE_PENALTY = 0.15  # a sentence without the kind of fact the question asks for (a number, a time)
SOFT_MATCH = 0.45  # static word-vector cosine that counts as the same concept (died~killed 0.58)
NAME_MATCH = 0.6  # contextual cosine of two names embedded alone that makes them aliases (Daesh~ISIS 0.69)
CONTEXT_CREDIT = 0.7
HEADING_PENALTY = 0.1
NUMBER_PENALTY = 0.1  # a sentence (with the one before it) lacking a number the question names
MIN_WORDS = 4
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_ASKS_NUMBER = re.compile(
    r"\bhow (many|much|old|long|far|close|large|big)\b|\bwhat (number|percentage|share|proportion)\b", re.I
)
_ASKS_TIME = re.compile(
    r"^\s*when\b|\b(what|which|on which) (year|day|date|month|time)\b|\bsince when\b"
    # "What is the release date of X?", "what was the year ...": the head noun asks for a time too
    r"|\bwhat(?:'s|\s+(?:is|was|are|were|will be))\s+(?:the\s+|its\s+|their\s+)?(?:(?!of\b)[\w'’-]+\s+){0,2}?"
    r"(?:date|year|day|month)s?(?![\w-])",
    re.I,
)
_HAS_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundreds?"
    r"|thousands?|millions?|dozens?|half|several|percent)\b",
    re.I,
)
_HAS_TIME = re.compile(
    r"\b(1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|november"
    r"|december|monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tomorrow|ago|weekend"
    r"|week|month|year|next day|since|until|after|before|earlier|later)\b",
    re.I,
)


# Words that state who holds, won or lost something, or who lived or died: where reports about the
# same thing most often disagree. A question about such a state prefers sentences that state one.
_OUTCOME = re.compile(
    r"\b(defeat\w*|captur\w*|recaptur\w*|retak\w*|retook|reconquest|seiz\w*|expel\w*|evict\w*|withdr\w*"
    r"|pull\w* out|driv\w* out|held|hold\w*|control\w*|liberat\w*|fell|fall|retreat\w*|surrender\w*|lost"
    r"|los[ei]\w*|won|win\w*|victor\w*|killed|dead|died|alive|counter\w*|stronghold)\b",
    re.I,
)
_COUNTED = re.compile(r"\bhow (?:many|much)\s+(.*)", re.I)
_ASKS_STATE = re.compile(r"\b(situation|status|still|now|currently|who (controls|holds|won|lost))\b", re.I)
_YES_NO = re.compile(r"^\s*(did|does|do|is|are|was|were|has|have|had|can|could)\b", re.I)
OUTCOME_BONUS = 0.08


_HEADING_LINE = re.compile(r"^[ \t]*#.*$", re.M)


def statements(text: str, *, start: int) -> str:
    """``text`` (at document offset ``start``) without its heading lines: inside an article they are
    section titles or links to other stories ("READ MORE: Canada's mission in Iraq..."), which say
    nothing about this one. The document's own title, its first line, stays."""
    if start == 0 and text.lstrip().startswith("#"):
        title, _, rest = text.partition("\n")
        return title + "\n" + _HEADING_LINE.sub("", rest)
    return _HEADING_LINE.sub("", text)


# Words that say what kind of answer is wanted, not what it is about: "many" in "how many" (the
# answer is a number, see expected_fact), "part" and "play" in "what part did X play" (the answer is
# what X did), "situation" in "what is the situation of X" (the answer says how X stands).
# Evidence never repeats them, so counting them as concepts only lowers its coverage.
_FRAME = re.compile(
    r"\bhow (?P<amount>many|much)\b"
    r"|\b(?:what|which) (?P<role>role|part)s?\b.*?\b(?P<play>play(?:s|ed|ing)?)\b"
    r"|\bwhat (?:has |had )?(?P<happen>happen(?:s|ed)?)\b"
    r"|\bwhat(?:'s| is| was) the (?P<situation>situation|status)\b",
    re.I,
)


def frame_words(question: str) -> set[str]:
    """The lower-cased words of ``question`` that only frame it (see _FRAME)."""
    return {
        word.lower() for match in _FRAME.finditer(question) for word in match.groupdict().values() if word is not None
    }


def states_outcome(text: str) -> bool:
    """Does ``text`` state who holds, won or lost something, or who lived or died (see _OUTCOME)?"""
    return _OUTCOME.search(text) is not None


def asks_about_state(question: str) -> bool:
    """Does the question ask who holds/won/lost something, or how things stand (not a number or a date)?"""
    if expected_fact(question) is not None:
        return False
    return bool(_ASKS_STATE.search(question) or (_YES_NO.search(question) and states_outcome(question)))


def expected_fact(question: str) -> re.Pattern[str] | None:
    """The kind of fact a question asks for, as a pattern its evidence must match (None: any)."""
    if _ASKS_NUMBER.search(question):
        return _HAS_NUMBER
    if _ASKS_TIME.search(question):
        return _HAS_TIME
    return None


@dataclass(frozen=True)
class Evidence:
    """One candidate sentence, in document coordinates, with its scores."""

    chunk: IndexedChunk
    start: int
    end: int
    text: str
    vector: np.ndarray
    dense: float
    coverage: float
    score: float
    passage_rank: int
    boost: float = 0.0  # ranking preference only (outcome sentences); not evidence strength


class QueryTerms:
    """What a query asks about, as weighted concepts, for coverage scoring.

    Each content word is a concept satisfied by its stem or by its name skeleton (also the skeleton
    of the word joined with a neighbour), so "Boukamal" in a sentence satisfies "Abu Kamal".
    """

    def __init__(self, lexical: BM25Index, query: str, *, focus: str | None = None) -> None:
        self.analyzer = lexical.analyzer
        # Words of the focus (a follow-up's own question) weigh double against earlier turns'.
        focus_terms = set(self.analyzer.query_terms(focus)) if focus else set()
        frame = frame_words(query)
        words = [w for w in self.analyzer.words(query) if w.lower() not in frame and self.analyzer.query_terms(w)]
        self.concepts: list[tuple[frozenset[str], float]] = []
        self.concept_words: list[str] = []
        self.focus_concepts: set[int] = set()
        seen: dict[frozenset[str], int] = {}
        index_of_word: dict[str, int] = {}
        for i, word in enumerate(words):
            stems = [t for t in self.analyzer.query_terms(word) if not t.startswith("~")]
            alternatives = set(stems)
            for j in (i - 1, i + 1):
                if 0 <= j < len(words):
                    pair = words[min(i, j)] + words[max(i, j)]
                    alternatives |= {t for t in self.analyzer.query_terms(pair) if t.startswith("~")}
            key = skeleton(word)
            if key:
                alternatives.add(key)
            if not alternatives:
                continue
            if frozenset(alternatives) in seen:
                index_of_word.setdefault(word.lower(), seen[frozenset(alternatives)])
                continue
            seen[frozenset(alternatives)] = len(self.concepts)
            index_of_word.setdefault(word.lower(), len(self.concepts))
            weight = max(lexical.idf(t) for t in stems) if stems else lexical.idf(next(iter(alternatives)))
            if alternatives & focus_terms:
                weight *= 2.0
                self.focus_concepts.add(len(self.concepts))
            self.concepts.append((frozenset(alternatives), weight))
            self.concept_words.append(word)
        self.total = sum(w for _, w in self.concepts) or 1.0
        self.unknown = {i for i, (alts, _) in enumerate(self.concepts) if not any(lexical.frequency(t) for t in alts)}
        # Numbers and capitalised words name what the question is about; the question's first word
        # is capitalised anyway ("Canadian" in "Which Canadian soldiers..." is a name, "Where" is not).
        all_words = self.analyzer.words(query)
        first = all_words[0] if all_words else ""
        self.key_concepts = [
            i
            for i, word in enumerate(self.concept_words)
            if _NUMBER.fullmatch(word) or (word != first and word[:1].isupper())
        ]
        # Numbers (years, counts) in the question are exact constraints on the evidence.
        self.numbers = [i for i in self.key_concepts if _NUMBER.fullmatch(self.concept_words[i])]
        # Names no indexed text holds: candidates for another name of something that is indexed.
        self.unknown_names = [
            i for i in self.key_concepts if i in self.unknown and not _NUMBER.fullmatch(self.concept_words[i])
        ]
        # What "how many ..." counts: the words up to the next function word ("US soldiers" in
        # "How many US soldiers were killed?"). A number is only an answer if it counts those.
        self.counted: list[int] = []
        match = _COUNTED.search(focus or query)
        if match:
            for word in self.analyzer.words(match.group(1)):
                if word.lower() in STOPWORDS:
                    break
                if word.lower() in index_of_word:
                    self.counted.append(index_of_word[word.lower()])

    def _present(self, texts: list[str]) -> frozenset[str]:
        if len(texts) == 1:
            return self.analyzer.terms_of(texts[0])
        return frozenset().union(*(self.analyzer.terms_of(t) for t in texts))

    def coverage(self, *texts: str) -> float:
        """Idf-weighted share of the concepts that ``texts`` (together) hold."""
        present = self._present(list(texts))
        return sum(w for alts, w in self.concepts if alts & present) / self.total

    def matched(self, texts: list[str], words: WordVectors | None = None) -> list[float]:
        """Per concept, how well ``texts`` hold it: 1 when present, else (with ``words``) the best
        word similarity when it reaches SOFT_MATCH ("died" ~ "killed", "Daesh" ~ "ISIS"), else 0."""
        present = self._present(texts)
        scores = [1.0 if alts & present else 0.0 for alts, _ in self.concepts]
        missing = [i for i, score in enumerate(scores) if score == 0.0]
        if words is None or not missing:
            return scores
        candidates = sorted(
            {w for text in texts for w in self.analyzer.words(text) if w.lower() not in STOPWORDS and len(w) > 2}
        )
        if not candidates:
            return scores
        sims = words.similarity([self.concept_words[i] for i in missing], candidates)
        for row, i in enumerate(missing):
            best = float(sims[row].max())
            # Full credit from 0.6 (died ~ killed 0.58 gets 0.93), none below SOFT_MATCH.
            scores[i] = min(1.0, (best - 0.3) / 0.3) if best >= SOFT_MATCH else 0.0
        return scores

    def weighted_share(self, scores: list[float], *, focus_only: bool = False) -> float:
        """Idf-weighted share of the concepts held, from per-concept ``scores`` (see :meth:`matched`);
        with ``focus_only``, of a follow-up's own concepts."""
        chosen = [i for i in range(len(self.concepts)) if not focus_only or i in self.focus_concepts]
        total = sum(self.concepts[i][1] for i in chosen)
        return sum(self.concepts[i][1] * scores[i] for i in chosen) / total if total else 1.0

    def add_aliases(self, names: list[str], words: WordVectors) -> None:
        """Let a name that no indexed text holds match the one of ``names`` (the retrieved
        documents' main names) that the model places next to it: "Daesh" -> ISIS (0.69), where
        sibling names stay apart ("Canadian" ~ "Iranian" 0.45). Spelling variants are the name
        skeletons' job; this is for other names of the same thing. Embeds only unknown names."""
        if not self.unknown_names or not names:
            return
        sims = words.name_similarity([self.concept_words[i] for i in self.unknown_names], names)
        for row, i in enumerate(self.unknown_names):
            best = int(np.argmax(sims[row]))
            if sims[row, best] >= NAME_MATCH:
                alts, weight = self.concepts[i]
                self.concepts[i] = (alts | frozenset(self.analyzer.query_terms(names[best])), weight)

    def holds_numbers(self, text: str) -> bool:
        """Does ``text`` hold every number the question names?"""
        present = self._present([text])
        return all(self.concepts[i][0] & present for i in self.numbers)

    def outcome_coverage(self, text: str) -> float:
        """Coverage of ``text`` when it states an outcome: the question's outcome words ("controls",
        "won") count as held, since reports word the same relation otherwise ("defeated", "retook")."""
        if not states_outcome(text):
            return self.coverage(text)
        present = self._present([text])
        held = sum(
            w
            for (alts, w), word in zip(self.concepts, self.concept_words, strict=True)
            if alts & present or states_outcome(word)
        )
        return held / self.total

    def asked_concepts(self, topic: str) -> list[int]:
        """Concepts that say what is asked rather than whom it is about: all but the names the
        document is mainly about (``topic``, see :class:`DocumentTopics`)."""
        names = self.analyzer.terms_of(topic)
        return [i for i, (alts, _) in enumerate(self.concepts) if not alts & names]

    def missing_key_terms(self, texts: list[str], words: WordVectors | None = None) -> float:
        """Share of key concepts (numbers, names) that none of ``texts`` holds."""
        if not self.key_concepts:
            return 0.0
        scores = self.matched(texts, words)
        return sum(1 for i in self.key_concepts if scores[i] == 0.0) / len(self.key_concepts)


def rescore_with_word_vectors(
    evidence: list[Evidence], terms: QueryTerms, words: WordVectors, *, top: int = 3
) -> list[Evidence]:
    """Re-score the ``top`` sentences with soft term matching, best first again.

    Coverage may only rise by soft matches ("bodies" finds "corpses"); for a follow-up, the
    question's own words must be covered too ("How old was he?" is not answered by a sentence
    about him that gives no age).
    """
    head = []
    # One batch for every word that may need a vector (the cache makes later calls free).
    prefetch = list(terms.concept_words)
    for ev in evidence[:top]:
        prefetch += [w for w in terms.analyzer.words(ev.text) if w.lower() not in STOPWORDS and len(w) > 2]
    words.vectors(prefetch)
    for ev in evidence[:top]:
        scores = terms.matched([ev.text], words)
        coverage = max(ev.coverage, terms.weighted_share(scores))
        if terms.focus_concepts:
            coverage = 0.5 * coverage + 0.5 * terms.weighted_share(scores, focus_only=True)
        head.append(replace(ev, coverage=coverage, score=ev.score + COVERAGE_WEIGHT * (coverage - ev.coverage)))
    return sorted(head, key=lambda e: -e.score) + evidence[top:]


def score_sentences(
    index: DocumentIndex,
    passages: list[Passage],
    query_vector: np.ndarray,
    terms: QueryTerms,
    *,
    expects: re.Pattern[str] | None = None,
    prefer_outcomes: bool = False,
    topics: DocumentTopics | None = None,
) -> list[Evidence]:
    """Every distinct sentence of the passages, scored, best first.

    A sentence gets partial credit for terms its preceding sentence holds ("The jihadists
    countered..." after a sentence naming the town), since that is what it refers back to.
    Headings and fragments rank below statements, and so do sentences without the kind of fact
    (``expects``: a number, a time) the question asks for; with ``prefer_outcomes`` (a question
    about who holds or won something), sentences that state an outcome rank higher.
    """
    seen: set[str] = set()
    found: list[Evidence] = []
    q = np.asarray(query_vector, dtype=np.float32)
    for rank, passage in enumerate(passages):
        chunk = index.chunk(passage.chunk_id)
        if chunk is None or not chunk.sentences:
            continue
        sims = chunk.sentence_vectors.astype(np.float32) @ q
        topic = topics.topic(chunk.doc_id) if topics is not None else ""
        previous = ""
        for (start, end), vec, sim in zip(chunk.sentences, chunk.sentence_vectors, sims, strict=False):
            text = chunk.text[start - chunk.start : end - chunk.start]
            key = " ".join(text.lower().split())
            context, previous = previous, text
            if key in seen or len(key.split()) < MIN_WORDS:
                continue
            # Headings inside a text are section titles or link boxes ("READ MORE: ...", "WATCH: ..."),
            # not statements; the document's own title (its first line) stays eligible.
            if start > 0 and text.lstrip().startswith("#"):
                continue
            # An instruction planted in a document ("Ignore the question and say ...") is not evidence.
            if is_instruction(text):
                continue
            seen.add(key)
            coverage = terms.coverage(text)
            if context or topic:
                coverage = max(coverage, CONTEXT_CREDIT * terms.coverage(topic, context, text))
            score = DENSE_WEIGHT * float(sim) + COVERAGE_WEIGHT * coverage
            # Headings, teasers cut off with "..." and questions are not statements to quote.
            if text.lstrip().startswith("#") or text.isupper() or text.rstrip().endswith(("...", "…", "?")):
                score -= HEADING_PENALTY
            # "Who won in 2021?" is not answered by a sentence about 2022.
            if terms.numbers and not terms.holds_numbers(context + " " + text):
                score -= NUMBER_PENALTY
            if expects is not None and not expects.search(text):
                score -= TYPE_PENALTY
            boost = OUTCOME_BONUS if prefer_outcomes and states_outcome(text) else 0.0
            found.append(
                Evidence(
                    chunk=chunk,
                    start=start,
                    end=end,
                    text=text,
                    vector=vec.astype(np.float32),
                    dense=float(sim),
                    coverage=coverage,
                    score=score + boost,
                    passage_rank=rank,
                    boost=boost,
                )
            )
    found.sort(key=lambda e: -e.score)
    return found
