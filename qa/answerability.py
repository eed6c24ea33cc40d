"""Should the extractive answerer answer? A small logistic model over evidence signals.

The answerer measures, for its best evidence, signals that mean the same on any corpus: the MiniLM
question-sentence similarity, idf-weighted coverage of the question's words, whether the question's
names and numbers appear, whether a phrase of the asked-for type was found, how long the question
is. One hand-set threshold on one hand-mixed score meant different things on different corpora
(it was fitted to sample-news); this model weighs the signals from data of four kinds (news,
Wikipedia paragraphs, multi-article questions, counterfactual passages), trained by
``python -m eval.train_answerability`` on one fold and reported on the other (eval/README.md).

The weights live in ``qa/models/answerability.json``; the file's sha256 is checked on load.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.errors import ModelError
from qa.evidence import Evidence, QueryTerms
from qa.parts import NamedParts
from qa.types import Passage

MODEL_PATH = Path(__file__).resolve().parent / "models" / "answerability.json"
# sha256 of qa/models/answerability.json; eval.train_answerability prints the new one.
MODEL_SHA256 = "623052a1e47a05f6970635ae6f9bc8d868e6791a55b85aa5b058cd0bba076b6f"

# The signals the answerer computes (Answer.signals carries them, for debugging and training); the
# model weighs those its file names (eval/train_answerability.py chose them by leave-one-set-out).
FEATURES = (
    "strength",  # the hand-mixed evidence strength (0.65 dense + 0.35 coverage, with penalties)
    "dense",  # cosine of the question and the best sentence (MiniLM)
    "coverage",  # idf-weighted share of the question's concepts the sentence (and context) holds
    "full_match",  # 1 when the sentence holds every concept of a question of two or more
    "context_coverage",  # the same over the best passages together
    "key_missing",  # share of the question's names and numbers none of the best passages holds
    "unstated",  # 1 when the sentence names nothing of what is asked beyond the document's subject
    "type_missing",  # 1 when the sentence lacks the kind of fact asked (a number, a date; "how many X": X)
    "phrase",  # 1 when a factoid question's answer phrase of the asked-for type was found
    "factoid",  # 1 for who/what/when/where/which/how-many questions
    "concepts",  # log(1 + number of concepts in the question): long questions cover less
    "passage_dense",  # cosine of the question and the best passage
    "parts_missing",  # share of the sources a question names that have no evidence
    "reader_no_answer",  # the trained reader's no-answer score on the best sentence's window (qa/reading.py)
    "reader_in_sentence",  # 1 when the reader's best span lies inside the best sentence
)


@dataclass(frozen=True)
class AnswerabilityModel:
    """``P(answerable) = sigmoid(bias + sum(weight_f * signal_f))``.

    Args:
        weights: one per name in :data:`FEATURES` (missing ones count as 0).
        bias: the intercept.
        threshold: the probability under which the answerer refuses by default.
    """

    weights: Mapping[str, float]
    bias: float
    threshold: float = 0.5

    def probability(self, signals: Mapping[str, float]) -> float:
        z = self.bias + sum(w * float(signals.get(name, 0.0)) for name, w in self.weights.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def load(cls, path: Path = MODEL_PATH, *, sha256: str | None = MODEL_SHA256) -> AnswerabilityModel:
        """Read the weights, refusing a file whose hash is not the recorded one.

        Raises:
            ModelError: the file is missing, malformed or not the recorded one.
        """
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the answerability model {path}: {exc}") from exc
        digest = hashlib.sha256(raw).hexdigest()
        if sha256 is not None and digest != sha256:
            raise ModelError(f"{path}: sha256 {digest} is not the recorded {sha256}; retrain or restore the file")
        try:
            data = json.loads(raw)
            weights = {name: float(data["weights"][name]) for name in FEATURES if name in data["weights"]}
            return cls(weights=weights, bias=float(data["bias"]), threshold=float(data.get("threshold", 0.5)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: malformed answerability model: {exc}") from exc


def evidence_signals(
    *,
    best: Evidence,
    terms: QueryTerms,
    context: list[str],
    passages: list[Passage],
    strength: float,
    expects: re.Pattern[str] | None,
    factoid: bool,
    about_state: bool,
    phrase_found: bool,
    parts: NamedParts,
    part_tops: list[Evidence],
    states_asked: bool,
    key_missing: float,
    counts_other: bool = False,
) -> dict[str, float]:
    """The :data:`FEATURES` for the best evidence of one question (see the comments there).

    ``counts_other``: a "how many X" question whose sentence does not name X (its number counts
    something else). For a question in parts (two or more mentions of sources with evidence),
    similarity is averaged over the parts' best sentences and coverage taken over them together.
    """
    dense, coverage = best.dense, best.coverage
    if about_state:
        coverage = max(coverage, terms.outcome_coverage(best.text))
    if len(part_tops) >= 2:
        dense = float(np.mean([e.dense for e in part_tops]))
        coverage = max(coverage, terms.coverage(*(e.text for e in part_tops)))
    if len(parts.mentions) >= 2:  # mentions without evidence count as missing parts too
        missing = (len(parts.unknown) + len(parts.mentions) - len(part_tops)) / parts.named
    else:
        missing = parts.missing_share
    return {
        "strength": round(strength, 4),
        "dense": round(dense, 4),
        "coverage": round(coverage, 4),
        "full_match": 1.0 if best.coverage >= 0.99 and len(terms.concepts) >= 2 else 0.0,
        "context_coverage": round(terms.coverage(*context), 4),
        "key_missing": round(key_missing, 4),
        "unstated": 0.0 if states_asked else 1.0,
        "type_missing": 1.0 if (expects is not None and not expects.search(best.text)) or counts_other else 0.0,
        "phrase": 1.0 if phrase_found else 0.0,
        "factoid": 1.0 if factoid else 0.0,
        "concepts": round(math.log1p(len(terms.concepts)), 4),
        "passage_dense": round(max((p.dense_score or 0.0 for p in passages), default=0.0), 4),
        "parts_missing": round(missing, 4),
    }
