"""The extractive answerer: the answer is the best evidence sentences, each cited to its exact span.

For a factoid question (who, what, when, where, how many) it leads with the answer phrase, a span of
the best sentence. Whether to answer at all is decided by a small logistic model over evidence
signals (qa/answerability.py), trained across four kinds of corpora. When strong evidence from
several documents states different outcomes, or gives different answer phrases, it shows each
source's account side by side with its date instead of silently picking one; a question that names
its sources is answered from each of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from index.pipeline import DocumentIndex
from qa.accounts import (
    Account,
    make_citation,
    older_first,
    outcome_sides,
    phrase_groups,
    phrase_pool,
)
from qa.answerability import AnswerabilityModel, evidence_signals
from qa.evidence import (
    Evidence,
    QueryTerms,
    asks_about_state,
    expected_fact,
    rescore_with_word_vectors,
    score_sentences,
    statements,
    states_outcome,
)
from qa.followup import asks_for_source
from qa.names import fuller_name
from qa.parts import NamedParts
from qa.reading import ReaderView, rerank, shipped_reader
from qa.shapes import (
    EVIDENCE_FLOOR,
    SIDE_RATIO,
    NameExpander,
    Phrase,
    by_named_source,
    choose_sentences,
    fill,
    lead_with,
    missing_parts_notice,
    refusal,
    reported_by,
)
from qa.types import Answer, PartPassages, Passage
from qa.vocabulary import DocumentTopics, WordVectors

# Another document is shown as its own side when its best sentence clears EVIDENCE_FLOOR by
# SIDE_FLOOR_MARGIN and reaches SIDE_RATIO of the overall best (calibrated on eval/sample-news).
SIDE_FLOOR_MARGIN = 0.02
PHRASE_MARGIN = 0.12  # another document's answer phrase counts when its sentence is this close to the best
KEY_TERM_PENALTY = 0.5
FULL_MATCH_BONUS = 0.05
UNSTATED_PENALTY = 0.25  # the best sentence does not state what is asked (see states_what_is_asked)
SOFT_BAND = 0.15  # soft matching runs when the best score is this close to the evidence floor
# A factoid answer leads with the reader's span inside the best sentence (spaCy's typed phrase where
# it has none); whether documents give different answers is decided on spaCy's phrases. On fold 0
# the reader's lead raised SQuAD answer-phrase F1 from 0.369 to 0.500; reader spans compared across
# documents put noisy "different answers" side by side (RGB false answer alone 2 -> 3 of 49, spaCy's:
# 1 of 49): eval/README.md.
# For a question the reader reads the RERANK_TOP best sentences (with their neighbours, one batch)
# and raises those it answers from by up to RERANK_WEIGHT (qa/reading.rerank). Chosen on fold 0 of
# the four sets: weight 0.1 beat 0 and 0.2, top 5 beat top 3, reading only factoid questions lost an
# RGB case (eval/README.md). A claim ("X causes Y.", SciFact's queries) is not read: a reading-
# comprehension model answers questions, and its no-answer score did not pay as a refusal signal.
RERANK_TOP = 5
RERANK_WEIGHT = 0.1
NAME_LABELS = ("PERSON", "ORG")  # answers whose name a document may spell out in full elsewhere


class ExtractiveAnswerer:
    """Composes answers from indexed sentences only; never generates text of its own.

    Args:
        index: the document index (for sentence vectors and idf).
        threshold: answer when the answerability model's probability reaches this (None: the
            model's calibrated threshold; -1 never refuses, for calibration sweeps).
        model: the answerability model (default: the shipped, hash-checked one).
        phrases: answer-phrase extractor (default: the spaCy one, loaded on first use); False: none.
        reader: the trained span reader (default: the shipped one, loaded on first use); False: none
            (no re-ranking, spaCy's phrases only).
    """

    name = "extractive"

    def __init__(
        self,
        *,
        index: DocumentIndex,
        threshold: float | None = None,
        soft_band: float = SOFT_BAND,
        model: AnswerabilityModel | None = None,
        phrases: Any = None,
        reader: Any = None,
    ) -> None:
        self.index = index
        self.model = model or AnswerabilityModel.load()
        self.threshold = self.model.threshold if threshold is None else threshold
        self.soft_band = soft_band  # math.inf: always soft-match
        self.words = WordVectors(index.embedder)
        self.topics = DocumentTopics(index)
        self._phrases = phrases
        self._reader = reader

    @property
    def reader(self) -> Any:
        if self._reader is None:
            self._reader = shipped_reader()
        return self._reader or None

    @property
    def phrases(self) -> Any:
        if self._phrases is None:
            from qa.phrases import PhraseExtractor

            self._phrases = PhraseExtractor()
        return self._phrases or None

    @staticmethod
    def evidence_strength(best: Evidence, terms: QueryTerms, *, key_missing: float, states_asked: bool) -> float:
        """Best sentence score, lowered when the question's names or numbers are absent
        (``key_missing``, a share) or the sentence does not state what is asked, raised when the
        sentence holds every word the question asks about (names defeat the dense model: "Who is
        Rakan Said?" is about a name it has no meaning for)."""
        strength = best.score - best.boost
        if best.coverage >= 0.99 and len(terms.concepts) >= 2:
            strength += FULL_MATCH_BONUS
        strength *= 1.0 - KEY_TERM_PENALTY * key_missing
        if not states_asked:
            strength *= 1.0 - UNSTATED_PENALTY
        return strength

    @staticmethod
    def counts_something_else(terms: QueryTerms, scores: list[float]) -> bool:
        """For "how many X", does the sentence (whose per-concept ``scores`` these are, see
        :meth:`QueryTerms.matched`) lack X? ("How many US soldiers were killed?" against "more than
        30 deaths": its number counts something else.)"""
        return any(scores[i] == 0.0 for i in terms.counted)

    def states_what_is_asked(self, best: Evidence, terms: QueryTerms, scores: list[float]) -> bool:
        """Does the sentence say something about what the question asks, beyond whom it is about?

        A sentence about the right town that names none of the asked-for relation ("Who commanded
        the fighters in Abu Kamal?", "What is the population of Abu Kamal?") does not answer; nor
        does a number that counts something other than what "how many ..." asks about. Two
        statements of who holds or won something count as the same relation ("Who controls X?",
        "... defeated the Islamic State in X"), since that is how reports word it.
        """
        if self.counts_something_else(terms, scores):
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
        parts: NamedParts | None = None,
        part_passages: Sequence[PartPassages] = (),
    ) -> Answer:
        """Answer from ``passages`` (already retrieved for ``query``).

        For a follow-up, ``query`` carries earlier turns; ``question_vector`` (the question alone)
        then counts as much as the query, so "how many died?" still asks for a number of deaths.
        ``parts`` are the sources the question names; ``part_passages`` the passages retrieved
        for each mention of an indexed source, when there are two or more.
        """
        parts = parts or NamedParts()
        source_question = asks_for_source(question) and query != question
        # "Who reported that?" is about the earlier question (``query``, see QAService.ask): its
        # words are what the evidence must hold.
        claim = query
        about_state = asks_about_state(claim if source_question else question)
        focus = question if query != question and not source_question else None
        terms = QueryTerms(self.index.lexical, claim, focus=focus)
        if terms.unknown_names:
            names = {name for doc in dict.fromkeys(p.doc_id for p in passages) for name in self.topics.names_of(doc)}
            terms.add_aliases(sorted(names), self.words)
        if question_vector is not None and query != question and not source_question:
            blended = query_vector + question_vector
            query_vector = blended / max(float(np.linalg.norm(blended)), 1e-12)
        expects = expected_fact(question)
        evidence = self._evidence(passages, query_vector, terms, expects=expects, about_state=about_state)
        if not evidence:
            return refusal(question, query, [], 0.0, {}, parts, answerer=self.name)
        factoid = self._is_factoid(question) and not source_question
        views: dict[int, ReaderView] = {}
        if self.reader is not None and not question.rstrip().endswith("."):  # a claim is not a question
            evidence, views = rerank(self.reader, question, evidence, top=RERANK_TOP, weight=RERANK_WEIGHT)
        best = evidence[0]
        context = [statements(best.chunk.text, start=best.chunk.start)]
        context += [statements(p.text, start=p.start) for p in passages[:3]]
        # The best sentence matched against the question once, for every check that needs it.
        scores = terms.matched([best.text], self.words)
        key_missing = terms.missing_key_terms(context, self.words)
        states_asked = self.states_what_is_asked(best, terms, scores)
        strength = self.evidence_strength(best, terms, key_missing=key_missing, states_asked=states_asked)
        part_evidence = self._part_evidence(part_passages, expects) if len(part_passages) >= 2 else []
        phrases = self._phrase_candidates(question, evidence, part_evidence) if factoid else {}
        signals = evidence_signals(
            best=best,
            terms=terms,
            context=context,
            passages=passages,
            strength=strength,
            expects=expects,
            factoid=factoid,
            about_state=about_state,
            phrase_found=id(best) in phrases,
            parts=parts,
            part_tops=[ev for _, ev in part_evidence],
            states_asked=states_asked,
            counts_other=self.counts_something_else(terms, scores),
            key_missing=key_missing,
        )
        if id(best) in views:
            signals.update(views[id(best)].signals())
        probability = self.model.probability(signals)
        if probability < self.threshold:
            return refusal(question, query, evidence, probability, signals, parts, answerer=self.name)
        result = Answer(
            question=question,
            query=query,
            text="",
            citations=[],
            refused=False,
            answerer=self.name,
            score=round(probability, 4),
            signals=signals,
            notice=missing_parts_notice(parts),
        )
        expand = self._name_expander(question) if factoid else None
        if len(part_evidence) >= 2:
            return by_named_source(result, part_evidence, phrases, factoid=factoid, expand=expand)
        if source_question:
            return reported_by(result, evidence, best)
        sides = (
            outcome_sides(evidence, best, floor=max(EVIDENCE_FLOOR + SIDE_FLOOR_MARGIN, SIDE_RATIO * best.score))
            if about_state
            else {}
        )
        if len(sides) >= 2:
            accounts = older_first([Account(evidence=evs) for evs in sides.values()])
            return fill(result, "The sources give different accounts:", accounts, conflict=True)
        if factoid:
            groups = phrase_groups(evidence, best, phrases, floor=max(EVIDENCE_FLOOR, best.score - PHRASE_MARGIN))
            if len(groups) >= 2:
                accounts = older_first(groups)
                return fill(result, "The sources give different answers:", accounts, conflict=True)
        chosen = choose_sentences(evidence, best)
        lead = phrases.get(id(best))
        if id(best) in views and views[id(best)].phrase is not None:
            lead = views[id(best)].phrase
        chosen.sort(key=lambda e: (e is not best, e.chunk.doc_id, e.start))
        citations = [make_citation(i, ev) for i, ev in enumerate(chosen, start=1)]
        result.text = " ".join(f"{ev.text} [{c.n}]" for ev, c in zip(chosen, citations, strict=True))
        result.citations = citations
        if lead is not None:
            lead_with(result, best, lead, expand=expand)
        return result

    # evidence ---------------------------------------------------------------------------------
    def _evidence(
        self,
        passages: Sequence[Passage],
        query_vector: np.ndarray,
        terms: QueryTerms,
        *,
        expects: re.Pattern[str] | None,
        about_state: bool = False,
    ) -> list[Evidence]:
        evidence = score_sentences(
            self.index,
            list(passages),
            query_vector,
            terms,
            expects=expects,
            prefer_outcomes=about_state,
            topics=self.topics,
        )
        # Soft matching costs word embeddings; it only matters near the floor or for a follow-up
        # (whose own words must be covered), so clear answers and clear refusals skip it.
        lexical_best = evidence[0].score - evidence[0].boost if evidence else 0.0
        if evidence and (terms.focus_concepts or abs(lexical_best - EVIDENCE_FLOOR) < self.soft_band):
            evidence = rescore_with_word_vectors(evidence, terms, self.words)
        return evidence

    # answer phrases ---------------------------------------------------------------------------
    def _name_expander(self, question: str) -> NameExpander:
        """The document's fullest form of an answer's name (qa/names.py), for a question asking for
        a person or an organisation; other questions keep the form given (a place: "Washington" is
        not "George Washington"). The question is parsed for its type only once a phrase leads."""

        def expand(ev: Evidence, phrase: Phrase) -> tuple[Evidence, Phrase] | None:
            wanted = self.phrases.answer_type(question) if self.phrases is not None else None
            if wanted is None or not wanted.labels or wanted.labels[0] not in NAME_LABELS:
                return None
            return fuller_name(self.index, ev, phrase)

        return expand

    def _is_factoid(self, question: str) -> bool:
        """A question answered by a short phrase (who/what/when/where/how many ...)."""
        if self.phrases is None:
            return False
        from qa.phrases import is_factoid

        return bool(is_factoid(question))

    def _part_evidence(
        self, part_passages: Sequence[PartPassages], expects: re.Pattern[str] | None
    ) -> list[tuple[str, Evidence]]:
        """The best sentence for each part, scored against that part's own clause. When an outlet
        is named twice (two of its reports), a later part prefers a document not cited yet."""
        found: list[tuple[str, Evidence]] = []
        used_docs: set[str] = set()
        for part in part_passages:
            terms = QueryTerms(self.index.lexical, part.clause)
            evidence = self._evidence(part.passages, part.vector, terms, expects=expects)
            fresh = [ev for ev in evidence if ev.chunk.doc_id not in used_docs]
            candidates = fresh or evidence
            if not candidates:
                continue
            # The part names a report ("the TechCrunch article on Spill's platform"): its best-ranked
            # passage says which document that is, and that document's best sentence is the evidence.
            docs = {ev.chunk.doc_id for ev in candidates}
            report = next((p.doc_id for p in part.passages if p.doc_id in docs), None)
            top = next(ev for ev in candidates if ev.chunk.doc_id == report) if report else candidates[0]
            if all(top.start != ev.start or top.chunk.doc_id != ev.chunk.doc_id for _, ev in found):
                found.append((part.source, top))
                used_docs.add(top.chunk.doc_id)
        return found

    def _phrase_candidates(
        self, question: str, evidence: list[Evidence], part_evidence: list[tuple[str, Evidence]]
    ) -> dict[int, tuple[str, int, int]]:
        """spaCy's answer phrases (text, start, end in the sentence) of the best sentences, keyed by id(evidence)."""
        pool = phrase_pool(evidence, part_evidence, margin=PHRASE_MARGIN)
        # One confidence bar for every phrase (the extractor's, tuned on SQuAD training pages): a
        # lower one for other documents' phrases put near-synonyms side by side as "different
        # answers" on sample-news (measured: eval/README.md).
        found = self.phrases.extract(question, [ev.text for ev in pool])
        out: dict[int, tuple[str, int, int]] = {}
        for ev, phrase in zip(pool, found, strict=True):
            if phrase is not None and ev.text[phrase.start : phrase.end] == phrase.text:
                out[id(ev)] = (phrase.text, phrase.start, phrase.end)
        return out
