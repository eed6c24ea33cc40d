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
