"""Choosing the refusal threshold from a sweep."""

from __future__ import annotations

from eval.calibrate import choose_threshold, sweep


def test_sweep_counts_refusals_of_unanswerable_and_answerable_cases():
    scores = [(0.30, False), (0.40, False), (0.50, True), (0.60, True), (0.35, True)]
    (row,) = sweep(scores, [0.45])
    assert row["recall"] == 1.0  # both unanswerable cases refused
    assert row["precision"] == 2 / 3  # one answerable case (0.35) refused too
    assert row["answerable_kept"] == 2 / 3


def test_the_threshold_is_the_middle_of_the_widest_best_plateau():
    scores = [(0.30, False), (0.40, False), (0.50, True), (0.60, True)]
    rows = sweep(scores, [0.35, 0.41, 0.43, 0.45, 0.47, 0.49, 0.55])
    # Every threshold in (0.40, 0.50] separates the cases; the middle one keeps the widest margin.
    assert choose_threshold(rows)["threshold"] == 0.45
