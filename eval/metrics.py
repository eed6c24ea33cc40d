"""Metric functions: pure, small, and checked by hand in tests/eval/test_metrics.py.

Answer normalization follows SQuAD's (lower case, articles dropped, whitespace collapsed) except
that punctuation becomes a space and a possessive ``'s`` is dropped, so "observatory's" still
contains "observatory" and "Al-Bagdadi" reads "al bagdadi" on both sides; citeqa's citation
markers ``[n]`` are removed first.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence

Span = tuple[int, int]

_MARKER = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_POSSESSIVE = re.compile(r"'s\b")
_PUNCT = str.maketrans(string.punctuation, " " * len(string.punctuation))


def normalize_answer(text: str) -> str:
    """Lower case, no citation markers, no punctuation, no articles, single spaces."""
    text = _POSSESSIVE.sub("", _MARKER.sub(" ", text).lower()).translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_matches(answer_text: str, accepted: Iterable[str]) -> bool:
    """True when some accepted answer occurs, as whole words, inside the normalized answer text."""
    haystack = f" {normalize_answer(answer_text)} "
    return any((needle := normalize_answer(a)) and f" {needle} " in haystack for a in accepted)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between two strings (after normalization)."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def best_token_f1(prediction: str, accepted: Iterable[str]) -> float:
    """Highest token F1 against any accepted answer (0.0 when there are none)."""
    return max((token_f1(prediction, a) for a in accepted), default=0.0)


def find_spans(text: str, quote: str) -> list[Span]:
    """Every (start, end) where ``quote`` occurs in ``text``, overlapping occurrences included."""
    spans, start = [], text.find(quote)
    while quote and start >= 0:
        spans.append((start, start + len(quote)))
        start = text.find(quote, start + 1)
    return spans


def spans_overlap(a: Span, b: Span) -> bool:
    """True when two half-open character spans share at least one character."""
    return a[0] < b[1] and b[0] < a[1]


def unique_in_order(items: Iterable[Hashable]) -> list[Hashable]:
    """Items in first-seen order, duplicates dropped (passages -> ranked documents)."""
    seen: set[Hashable] = set()
    return [x for x in items if not (x in seen or seen.add(x))]  # type: ignore[func-returns-value]


def reciprocal_rank(hits: Sequence[bool]) -> float:
    """1 / rank of the first hit in a ranked list (0.0 when nothing hits)."""
    return next((1.0 / rank for rank, hit in enumerate(hits, start=1) if hit), 0.0)


def recall_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float:
    """Share of the relevant items found in the first ``k`` of ``ranked``."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("recall needs at least one relevant item")
    return len(relevant & set(ranked[:k])) / len(relevant)


def ndcg_at_k(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (as trec_eval's ndcg_cut and BEIR compute it)."""
    dcg = sum(grades.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation, as numpy's default does."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Iterable[float]) -> float | None:
    """Arithmetic mean, None for no values (a metric that does not apply)."""
    values = list(values)
    return sum(values) / len(values) if values else None


def ratio(numerator: int, denominator: int) -> float | None:
    """numerator / denominator, None when the denominator is 0."""
    return numerator / denominator if denominator else None


def refusal_precision_recall(refused: Sequence[bool], answerable: Sequence[bool]) -> tuple[float | None, float | None]:
    """Refusal precision (refusals that were right) and recall (unanswerable cases refused).

    Args:
        refused: per case, whether the system refused.
        answerable: per case, whether the documents answer it.
    """
    correct = sum(1 for r, a in zip(refused, answerable, strict=True) if r and not a)
    return ratio(correct, sum(refused)), ratio(correct, sum(1 for a in answerable if not a))


def refusal_f1(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean of refusal precision and recall (None when either does not apply)."""
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def counterfactual_shown(
    reply: str, *, refused: bool, accepted: Iterable[str], conflicting: Iterable[str]
) -> tuple[bool, bool, bool]:
    """RGB counterfactual outcome of one reply: (true_shown, false_alone, both_shown).

    An answer "appears" as :func:`answer_matches` finds it (whole words, normalized). A refusal
    shows nothing.
    """
    if refused:
        return False, False, False
    true, false = answer_matches(reply, accepted), answer_matches(reply, conflicting)
    return true, false and not true, false and true


def cites_two_gold_docs(cited_docs: Iterable[str], gold_docs: Iterable[str]) -> bool | None:
    """Whether citations name at least two distinct gold documents; None when fewer than two are gold."""
    gold = set(gold_docs)
    if len(gold) < 2:
        return None
    return len(gold & set(cited_docs)) >= 2


_FACTOID = re.compile(r"^\W*(who|whom|whose|what|which|when|where|how many|how much)\b", re.IGNORECASE)


def is_factoid(question: str) -> bool:
    """A question asking for one short fact: starts with who/whom/whose/what/which/when/where/how many/how much."""
    return bool(_FACTOID.match(question))


def words_before_citation(reply: str) -> int:
    """Words before the first citation marker ``[n]`` (every word of the reply when it has none)."""
    marker = _MARKER.search(reply)
    return len((reply[: marker.start()] if marker else reply).split())


def exact_match(prediction: str, gold: str) -> bool:
    """SQuAD exact match: equal after normalization."""
    return normalize_answer(prediction) == normalize_answer(gold)


def squad_scores(prediction: str | None, accepted: Sequence[str]) -> tuple[float, float]:
    """SQuAD 2.0 (EM, F1) of one case: ``prediction`` None is an abstention (a refusal).

    Unanswerable (no accepted answers): 1 for an abstention, 0 for any answer. Answerable: the best
    EM and token F1 against the accepted answers, 0 for an abstention.
    """
    if not accepted:
        return (1.0, 1.0) if prediction is None else (0.0, 0.0)
    if prediction is None:
        return 0.0, 0.0
    em = max(float(exact_match(prediction, a)) for a in accepted)
    return em, best_token_f1(prediction, accepted)


def answer_span_valid(document_text: str | None, start: int | None, end: int | None, phrase: str) -> bool:
    """The answer phrase is exactly ``document_text[start:end]`` (False when the document or offsets are missing)."""
    if document_text is None or start is None or end is None or not 0 <= start <= end <= len(document_text):
        return False
    return document_text[start:end] == phrase
