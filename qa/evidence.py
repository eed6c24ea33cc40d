"""Sentence-level evidence inside retrieved passages (small-to-big), scored without re-embedding.

Each sentence already has a vector from indexing time (see index/embedding.py), so scoring a
sentence is a dot product with the query vector plus an idf-weighted term coverage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from index.lexical import BM25Index, skeleton
from index.pipeline import DocumentIndex, IndexedChunk
from qa.types import Passage

DENSE_WEIGHT = 0.65
COVERAGE_WEIGHT = 0.35
CONTEXT_CREDIT = 0.7
HEADING_PENALTY = 0.1
MIN_WORDS = 4
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


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


class QueryTerms:
    """What a query asks about, as weighted concepts, for coverage scoring.

    Each content word is a concept satisfied by its stem or by its name skeleton (also the skeleton
    of the word joined with a neighbour), so "Boukamal" in a sentence satisfies "Abu Kamal".
    """

    def __init__(self, lexical: BM25Index, query: str, *, focus: str | None = None) -> None:
        self.analyzer = lexical.analyzer
        # Words of the focus (a follow-up's own question) weigh double against earlier turns'.
        focus_terms = set(self.analyzer.query_terms(focus)) if focus else set()
        words = [w for w in self.analyzer.words(query) if self.analyzer.query_terms(w)]
        self.concepts: list[tuple[frozenset[str], float]] = []
        seen: set[frozenset[str]] = set()
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
            if not alternatives or frozenset(alternatives) in seen:
                continue
            seen.add(frozenset(alternatives))
            weight = max(lexical.idf(t) for t in stems) if stems else lexical.idf(next(iter(alternatives)))
            if alternatives & focus_terms:
                weight *= 2.0
            self.concepts.append((frozenset(alternatives), weight))
        self.total = sum(w for _, w in self.concepts) or 1.0
        # Numbers and capitalised words (past the first) name what the question is about.
        self.key_concepts = [
            alts
            for (alts, _), word in zip(self.concepts, self._concept_words(words), strict=False)
            if word and (_NUMBER.fullmatch(word) or (word is not words[0] and word[:1].isupper()))
        ]

    def _concept_words(self, words: list[str]) -> list[str | None]:
        out: list[str | None] = []
        seen: set[str] = set()
        for word in words:
            if word.lower() in seen:
                continue
            seen.add(word.lower())
            out.append(word)
        return out

    def _present(self, texts: list[str]) -> set[str]:
        present: set[str] = set()
        for text in texts:
            present |= set(self.analyzer.document_terms(text)) | set(self.analyzer.query_terms(text))
        return present

    def coverage(self, text: str) -> float:
        present = self._present([text])
        return sum(w for alts, w in self.concepts if alts & present) / self.total

    def missing_key_terms(self, texts: list[str]) -> float:
        """Share of key concepts (numbers, names) that none of ``texts`` contains."""
        if not self.key_concepts:
            return 0.0
        present = self._present(texts)
        return sum(1 for alts in self.key_concepts if not alts & present) / len(self.key_concepts)


def score_sentences(
    index: DocumentIndex, passages: list[Passage], query_vector: np.ndarray, terms: QueryTerms
) -> list[Evidence]:
    """Every distinct sentence of the passages, scored, best first.

    A sentence gets partial credit for terms its preceding sentence holds ("The jihadists
    countered..." after a sentence naming the town), since that is what it refers back to.
    Headings and fragments rank below statements.
    """
    seen: set[str] = set()
    found: list[Evidence] = []
    q = np.asarray(query_vector, dtype=np.float32)
    for rank, passage in enumerate(passages):
        chunk = index.chunk(passage.chunk_id)
        if chunk is None or not chunk.sentences:
            continue
        sims = chunk.sentence_vectors.astype(np.float32) @ q
        previous = ""
        for (start, end), vec, sim in zip(chunk.sentences, chunk.sentence_vectors, sims, strict=False):
            text = chunk.text[start - chunk.start : end - chunk.start]
            key = " ".join(text.lower().split())
            context, previous = previous, text
            if key in seen or len(key.split()) < MIN_WORDS:
                continue
            seen.add(key)
            coverage = terms.coverage(text)
            if context:
                coverage = max(coverage, CONTEXT_CREDIT * terms.coverage(context + " " + text))
            score = DENSE_WEIGHT * float(sim) + COVERAGE_WEIGHT * coverage
            # Headings and teasers cut off with "..." are not statements to quote.
            if text.lstrip().startswith("#") or text.isupper() or text.rstrip().endswith(("...", "…")):
                score -= HEADING_PENALTY
            found.append(
                Evidence(
                    chunk=chunk,
                    start=start,
                    end=end,
                    text=text,
                    vector=vec.astype(np.float32),
                    dense=float(sim),
                    coverage=coverage,
                    score=score,
                    passage_rank=rank,
                )
            )
    found.sort(key=lambda e: -e.score)
    return found
