"""Choosing the refusal threshold from a sweep."""

from __future__ import annotations

import hashlib

from eval.calibrate import CaseScore, choose_threshold, cross_validate, fold_of, macro_sweep, sweep


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


def test_folds_come_from_a_hash_of_the_case_id_and_do_not_change():
    ids = [f"q{i}" for i in range(200)]
    folds = [fold_of(i, 2) for i in ids]
    assert folds == [fold_of(i, 2) for i in ids]  # deterministic
    assert 70 < folds.count(0) < 130  # and roughly balanced
    assert fold_of("q0", 2) == int(hashlib.sha256(b"q0").hexdigest(), 16) % 2


def _case(set_name: str, case_id: str, strength: float, answerable: bool, correct: bool = True, fold: int = 0):
    return CaseScore(set_name, case_id, fold, strength, answerable, answerable and correct)


def test_macro_average_weighs_sets_equally_and_skips_sets_without_unanswerable_cases():
    cases = [
        # set a: separable at any t in (0.3, 0.5]
        _case("a", "a1", 0.3, False), _case("a", "a2", 0.5, True),
        # set b: unanswerable 0.45 above answerable 0.4: at 0.42 refuses the answerable, answers the other
        _case("b", "b1", 0.45, False), _case("b", "b2", 0.4, True, correct=False),
        # set c: answerable only (no refusal F1)
        _case("c", "c1", 0.35, True), _case("c", "c2", 0.6, True),
    ]
    (row,) = macro_sweep(cases, [0.42])
    assert row["sets"]["a"]["refusal_f1"] == 1.0
    assert row["sets"]["b"]["refusal_f1"] == 0.0  # one refusal, wrong; the unanswerable one answered
    assert row["sets"]["c"]["refusal_f1"] is None
    assert row["f1"] == 0.5  # (1 + 0) / 2, set c left out
    assert row["answerable_kept"] == (1 + 0 + 0.5) / 3
    assert row["answer_accuracy"] == (1 + 0 + 0.5) / 3  # b2 refused (and wrong anyway)


def test_cross_validation_tunes_on_one_fold_and_reports_on_the_other():
    cases = [
        _case("a", "t1", 0.30, False, fold=0), _case("a", "t2", 0.50, True, fold=0),
        _case("a", "h1", 0.45, False, fold=1), _case("a", "h2", 0.60, True, fold=1),
    ]
    runs = cross_validate(cases, folds=2, thresholds=[0.35, 0.40, 0.45, 0.50, 0.55])
    first = runs[1]  # fold 1 held out: tuned on fold 0, where (0.30, 0.50] separates -> middle 0.40
    assert first["tuned"]["threshold"] == 0.40
    assert first["held_out"]["sets"]["a"]["refusal_recall"] == 0.0  # h1 (0.45) is answered at 0.40
    assert runs[0]["tuned"]["threshold"] == 0.50  # fold 1: (0.45, 0.60] -> 0.50, 0.55 best; lower middle


def test_a_fold_keeps_the_cases_whose_id_hashes_to_it_in_order():
    from eval.calibrate import in_fold
    from eval.datasets import EvalCase

    cases = [EvalCase(id=f"q{i}", question=f"question {i}?", kind="factual") for i in range(40)]
    zero, one = in_fold(cases, 0), in_fold(cases, 1)
    assert sorted(c.id for c in zero + one) == sorted(c.id for c in cases)
    assert zero and one and not {c.id for c in zero} & {c.id for c in one}
    assert [c.id for c in one] == [c.id for c in cases if fold_of(c.id, 2) == 1]
