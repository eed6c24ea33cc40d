"""The extractive answerer: the answer is the best evidence sentences, each cited to its exact span.

It refuses when the best evidence is too weak (threshold calibrated in eval/README.md), and when
strong evidence comes from several documents that say different things it shows each source's
account side by side with its date instead of silently picking one.
"""

from __future__ import annotations

import re

import numpy as np

from index.pipeline import DocumentIndex
from qa.citations import Citation, cite_span
from qa.evidence import (
    DocumentTopics,
    Evidence,
    QueryTerms,
    WordVectors,
    asks_about_state,
    expected_fact,
    rescore_with_word_vectors,
    score_sentences,
    statements,
    states_outcome,
)
from qa.types import Answer, ConflictSide, Passage

REFUSAL_TEXT = "The indexed documents do not answer this."
MAX_SENTENCES = 3
FOLLOW_MARGIN = 0.10  # extra sentences must score within this of the best one
# Another document is shown as its own side when its best sentence clears the refusal threshold by
# SIDE_FLOOR_MARGIN and reaches SIDE_RATIO of the overall best (calibrated on eval/sample-news).
SIDE_RATIO = 0.6
SIDE_FLOOR_MARGIN = 0.02
SIDE_SECOND_MARGIN = 0.05
DUPLICATE_SIMILARITY = 0.92
KEY_TERM_PENALTY = 0.5
FULL_MATCH_BONUS = 0.05
UNSTATED_PENALTY = 0.25  # the best sentence does not state what is asked (see states_what_is_asked)
SOFT_BAND = 0.15  # soft matching runs when the best score is this close to the threshold


def make_citation(n: int, ev: Evidence) -> Citation:
    return cite_span(n, ev.chunk, ev.start, ev.end)


def source_label(ev: Evidence) -> str:
    chunk = ev.chunk
    who = chunk.source or chunk.title
    return f"{who} ({chunk.published_at or 'undated'})"


class ExtractiveAnswerer:
    """Composes answers from indexed sentences only; never generates text of its own.

    Args:
        index: the document index (for sentence vectors and idf).
        threshold: minimum evidence strength to answer.
    """

    name = "extractive"

    def __init__(self, *, index: DocumentIndex, threshold: float, soft_band: float = SOFT_BAND) -> None:
        self.index = index
        self.threshold = threshold
        self.soft_band = soft_band  # math.inf: always soft-match (calibration sweeps need that)
        self.words = WordVectors(index.embedder)
        self.topics = DocumentTopics(index)

    def evidence_strength(self, best: Evidence, terms: QueryTerms, context: list[str]) -> float:
        """Best sentence score, lowered when the question's names or numbers are absent or the
        sentence does not state what is asked, raised when the sentence holds every word the
        question asks about (names defeat the dense model: "Who is Rakan Said?" is about a name it
        has no meaning for)."""
        strength = best.score - best.boost
        if best.coverage >= 0.99 and len(terms.concepts) >= 2:
            strength += FULL_MATCH_BONUS
        strength *= 1.0 - KEY_TERM_PENALTY * terms.missing_key_terms(context, self.words)
        if not self.states_what_is_asked(best, terms):
            strength *= 1.0 - UNSTATED_PENALTY
        return strength

    def states_what_is_asked(self, best: Evidence, terms: QueryTerms) -> bool:
        """Does the sentence say something about what the question asks, beyond whom it is about?

        A sentence about the right town that names none of the asked-for relation ("Who commanded
        the fighters in Abu Kamal?", "What is the population of Abu Kamal?") does not answer; nor
        does a number that counts something other than what "how many ..." asks about. Two
        statements of who holds or won something count as the same relation ("Who controls X?",
        "... defeated the Islamic State in X"), since that is how reports word it.
        """
        scores = terms.matched([best.text], self.words)
        if terms.counted and any(scores[i] == 0.0 for i in terms.counted):
            return False
        if terms.focus_concepts:  # a follow-up: its own words are already required (rescoring)
            return True
        asked = terms.asked_concepts(self.topics.topic(best.chunk.doc_id))
        if not asked or any(scores[i] > 0.0 for i in asked):
            return True
        asked_words = " ".join(terms.concept_words[i] for i in asked)
        return states_outcome(asked_words) and states_outcome(best.text)

    def answer(
        self,
        *,
        question: str,
        query: str,
        passages: list[Passage],
        query_vector: np.ndarray,
        question_vector: np.ndarray | None = None,
    ) -> Answer:
        """Answer from ``passages`` (already retrieved for ``query``).

        For a follow-up, ``query`` carries earlier turns; ``question_vector`` (the question alone)
        then counts as much as the query, so "how many died?" still asks for a number of deaths.
        """
        # Reports disagree about states and outcomes (who holds a town, who died); only questions
        # about those get each source's account side by side. Elsewhere several documents simply
        # contribute sentences to one answer.
        about_state = asks_about_state(question)
        terms = QueryTerms(self.index.lexical, query, focus=question if query != question else None)
        if terms.unknown_names:
            names = {name for doc in dict.fromkeys(p.doc_id for p in passages) for name in self.topics.names_of(doc)}
            terms.add_aliases(sorted(names), self.words)
        if question_vector is not None and query != question:
            blended = query_vector + question_vector
            query_vector = blended / max(float(np.linalg.norm(blended)), 1e-12)
        evidence = score_sentences(
            self.index,
            passages,
            query_vector,
            terms,
            expects=expected_fact(question),
            prefer_outcomes=about_state,
            topics=self.topics,
        )
        # Soft matching costs word embeddings; it only matters near the threshold or for a
        # follow-up (whose own words must be covered), so clear answers and clear refusals skip it.
        lexical_best = evidence[0].score - evidence[0].boost if evidence else 0.0
        if evidence and (terms.focus_concepts or abs(lexical_best - self.threshold) < self.soft_band):
            evidence = rescore_with_word_vectors(evidence, terms, self.words)
        if not evidence:
            return Answer(
                question=question, query=query, text=REFUSAL_TEXT, citations=[], refused=True, answerer=self.name
            )
        best = evidence[0]
        context = [statements(best.chunk.text, start=best.chunk.start)]
        context += [statements(p.text, start=p.start) for p in passages[:3]]
        strength = self.evidence_strength(best, terms, context)
        if strength < self.threshold:
            return self._refusal(question, query, evidence, strength)
        chosen = self._choose(evidence, best)
        sides = self._sides(evidence, best) if about_state else {}
        if len(sides) >= 2:
            return self._side_by_side(question, query, sides, chosen, strength)
        chosen.sort(key=lambda e: (e.chunk.doc_id, e.start))
        citations = [make_citation(i, ev) for i, ev in enumerate(chosen, start=1)]
        text = " ".join(f"{ev.text} [{c.n}]" for ev, c in zip(chosen, citations, strict=True))
        return Answer(
            question=question,
            query=query,
            text=text,
            citations=citations,
            refused=False,
            answerer=self.name,
            score=round(strength, 4),
        )

    def _choose(self, evidence: list[Evidence], best: Evidence) -> list[Evidence]:
        chosen = [best]
        for ev in evidence[1:]:
            if len(chosen) >= MAX_SENTENCES or ev.score < best.score - FOLLOW_MARGIN or ev.score < self.threshold:
                break
            if not any(_duplicate(ev, other) for other in chosen):
                chosen.append(ev)
        return chosen

    def _sides(self, evidence: list[Evidence], best: Evidence) -> dict[str, list[Evidence]]:
        """Per document, the strong sentences that are not restatements of another document's."""
        floor = max(self.threshold + SIDE_FLOOR_MARGIN, SIDE_RATIO * best.score)
        sides: dict[str, list[Evidence]] = {}
        for ev in evidence:
            if ev.score < floor:
                break
            doc_sides = sides.setdefault(ev.chunk.doc_id, [])
            # A side's second sentence must be nearly as strong as its first.
            if doc_sides and (len(doc_sides) >= 2 or ev.score < doc_sides[0].score - SIDE_SECOND_MARGIN):
                continue
            if not any(_duplicate(ev, o) for side in sides.values() for o in side):
                doc_sides.append(ev)
        return {doc: evs for doc, evs in sides.items() if evs}

    def _side_by_side(
        self, question: str, query: str, sides: dict[str, list[Evidence]], chosen: list[Evidence], strength: float
    ) -> Answer:
        # Older reports first, undated ones before dated ones (they usually come from earlier coverage).
        ordered = sorted(sides.values(), key=lambda evs: (evs[0].chunk.published_at or "", evs[0].chunk.doc_id))
        citations: list[Citation] = []
        lines: list[str] = []
        conflicts: list[ConflictSide] = []
        for evs in ordered:
            evs = sorted(evs, key=lambda e: e.start)
            numbers = []
            parts = []
            for ev in evs:
                citation = make_citation(len(citations) + 1, ev)
                citations.append(citation)
                numbers.append(citation.n)
                parts.append(f"{ev.text} [{citation.n}]")
            chunk = evs[0].chunk
            lines.append(f"- {source_label(evs[0])}: " + " ".join(parts))
            conflicts.append(
                ConflictSide(
                    doc_id=chunk.doc_id,
                    title=chunk.title,
                    source=chunk.source,
                    published_at=chunk.published_at,
                    statement=" ".join(ev.text for ev in evs),
                    citations=tuple(numbers),
                )
            )
        text = "The sources give different accounts:\n" + "\n".join(lines)
        return Answer(
            question=question,
            query=query,
            text=text,
            citations=citations,
            refused=False,
            answerer=self.name,
            conflicts=conflicts,
            score=round(strength, 4),
        )

    def _refusal(self, question: str, query: str, evidence: list[Evidence], strength: float) -> Answer:
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
            answerer=self.name,
            see_also=see_also,
            score=round(strength, 4),
        )


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"\w+", text.lower()) if w not in ("the", "a", "an")}


def _duplicate(a: Evidence, b: Evidence) -> bool:
    """Restatements: one sentence's words mostly inside the other's (a teaser and its full
    sentence), or nearly the same vector."""
    wa, wb = _words(a.text), _words(b.text)
    shorter = min(len(wa), len(wb)) or 1
    if len(wa & wb) / shorter >= 0.85:
        return True
    return float(np.dot(a.vector, b.vector)) >= DUPLICATE_SIMILARITY
