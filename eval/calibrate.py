"""Calibrate the extractive answerer's refusal threshold on one or more eval sets.

    python -m eval.calibrate [DATASET] [--data-dir DIR]
    python -m eval.calibrate --sets sample-news,squad2,multihop-rag,rgb-counterfactual [--folds 2]
        [--data-dir DIR] [--scores-out FILE] [--scores-in FILE]

Asks every case once with refusal switched off and records the evidence strength the answerer
computed (``Answer.score``), whether the case is answerable and whether the answer given was
correct. A threshold t then refuses exactly the cases with strength < t, so every threshold can be
scored without asking again.

Thresholds are chosen by the macro-average over the sets of refusal F1 (each set counts the same,
whatever its size); a set with no unanswerable case has no refusal F1 and is left out of that
average (its answerable cases kept and answer accuracy are still shown). The chosen threshold is
the middle of the longest run of thresholds with the best F1 (the widest margin on both sides).

Cases are split into folds by a hash of the case id (:func:`fold_of`), the same on every run and
machine. With ``--folds 2`` the threshold is chosen on one fold and reported on the other, in both
directions (with more folds: chosen on all folds but one, reported on that one, for each fold).
See eval/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eval.datasets import EvalCase
from eval.runner import RETRIEVAL_SETTINGS

THRESHOLDS = [round(0.20 + 0.01 * i, 2) for i in range(41)]
# What shapes the strengths (saved beside them); never keys or URLs.
SCORING_SETTINGS = ("embedding_model", *RETRIEVAL_SETTINGS, "answerer")


@dataclass(frozen=True)
class CaseScore:
    """One case asked with refusal off: what a threshold needs to decide and score it."""

    set: str
    id: str
    fold: int
    strength: float  # Answer.score: refused at threshold t when strength < t
    answerable: bool
    correct: bool  # answerable and an accepted answer is in the reply (False for unanswerable cases)
    signals: dict[str, float] = field(default_factory=dict)  # Answer.signals (eval.train_answerability)


def fold_of(case_id: str, folds: int) -> int:
    """The fold a case belongs to: sha256 of its id modulo ``folds`` (stable across runs and machines)."""
    return int(hashlib.sha256(case_id.encode("utf-8")).hexdigest(), 16) % folds


def in_fold(cases: Sequence[EvalCase], fold: int, *, folds: int = 2) -> list[EvalCase]:
    """The cases of one fold (see :func:`fold_of`), in their order."""
    return [case for case in cases if fold_of(case.id, folds) == fold]


def sweep(scores: list[tuple[float, bool]], thresholds: list[float]) -> list[dict[str, float]]:
    """Refusal precision/recall/F1 at each threshold; ``scores`` are (strength, answerable)."""
    rows = []
    for t in thresholds:
        refused = [(s < t, answerable) for s, answerable in scores]
        tp = sum(1 for r, a in refused if r and not a)
        fp = sum(1 for r, a in refused if r and a)
        fn = sum(1 for r, a in refused if not r and not a)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        kept = sum(1 for r, a in refused if a and not r) / max(1, sum(1 for _, a in scores if a))
        rows.append({"threshold": t, "precision": precision, "recall": recall, "f1": f1, "answerable_kept": kept})
    return rows


def choose_threshold(rows: list[dict[str, float]]) -> dict[str, float]:
    """The middle of the longest run of thresholds with the best refusal F1 (lower middle on a
    tie): as far as the data allows from both the answerable and the unanswerable cases nearest
    to it, so a new case is least likely to land on the wrong side."""
    top = max(round(r["f1"], 6) for r in rows)
    runs = [list(run) for best, run in itertools.groupby(rows, key=lambda r: round(r["f1"], 6) == top) if best]
    run = max(runs, key=len)
    return run[(len(run) - 1) // 2]


def set_figures(cases: Sequence[CaseScore], threshold: float) -> dict[str, Any]:
    """Refusal P/R/F1 (None without unanswerable cases), answerable kept and answer accuracy at a threshold.

    Answer accuracy is the eval's: answerable cases answered (strength >= threshold) and correct,
    over all answerable cases.
    """
    (row,) = sweep([(c.strength, c.answerable) for c in cases], [threshold])
    answerable = [c for c in cases if c.answerable]
    has_unanswerable = any(not c.answerable for c in cases)
    return {
        "cases": len(cases),
        "refusal_precision": row["precision"] if has_unanswerable else None,
        "refusal_recall": row["recall"] if has_unanswerable else None,
        "refusal_f1": row["f1"] if has_unanswerable else None,
        "answerable_kept": row["answerable_kept"] if answerable else None,
        "answer_accuracy": (
            sum(c.correct and c.strength >= threshold for c in answerable) / len(answerable) if answerable else None
        ),
    }


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def macro_sweep(cases: Sequence[CaseScore], thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """Per threshold: each set's figures and their macro-averages (``f1`` is the macro refusal F1)."""
    by_set: dict[str, list[CaseScore]] = {}
    for c in cases:
        by_set.setdefault(c.set, []).append(c)
    rows = []
    for t in thresholds:
        per_set = {name: set_figures(group, t) for name, group in by_set.items()}
        rows.append(
            {
                "threshold": t,
                "f1": _mean([f["refusal_f1"] for f in per_set.values()]) or 0.0,
                "answerable_kept": _mean([f["answerable_kept"] for f in per_set.values()]),
                "answer_accuracy": _mean([f["answer_accuracy"] for f in per_set.values()]),
                "sets": per_set,
            }
        )
    return rows


def cross_validate(cases: Sequence[CaseScore], *, folds: int, thresholds: Sequence[float]) -> list[dict[str, Any]]:
    """For each fold: the threshold chosen on the other folds, and the figures on this one."""
    out = []
    for held_out in range(folds):
        tune = [c for c in cases if c.fold != held_out]
        test = [c for c in cases if c.fold == held_out]
        chosen = choose_threshold(macro_sweep(tune, thresholds))
        (result,) = macro_sweep(test, [chosen["threshold"]])
        out.append({"held_out_fold": held_out, "tuned": chosen, "held_out": result})
    return out


# asking -----------------------------------------------------------------------------------------
def collect_scores(set_names: Sequence[str], *, folds: int, data_dir: Path | None) -> list[CaseScore]:
    """Ask every case of every set once with refusal off and record it (soft matching as when serving,
    so the signals are the ones the answerability model sees)."""
    from tqdm import tqdm

    from api.cli import tqdm_progress
    from eval.datasets import resolve_dataset
    from eval.metrics import answer_matches
    from eval.runner import eval_index
    from index.embedding import Embedder
    from index.settings import get_settings
    from qa.service import QAService

    settings = get_settings(refusal_threshold=-1.0)
    embedder = Embedder.from_settings(settings)
    scores: list[CaseScore] = []
    for name in set_names:
        dataset = resolve_dataset(name)
        where = data_dir / dataset.slug if data_dir is not None else None
        with eval_index(dataset, settings, data_dir=where, progress=tqdm_progress, embedder=embedder) as index:
            service = QAService(index=index, settings=index.settings)
            for case in tqdm(dataset.cases, desc=name, unit="case", file=sys.stderr, disable=None):
                if case.answerable is None:
                    continue
                answer = service.ask(case.question, history=list(case.history))
                scores.append(
                    CaseScore(
                        set=dataset.name,
                        id=case.id,
                        fold=fold_of(case.id, folds),
                        strength=answer.score,
                        answerable=case.answerable,
                        correct=case.answerable and answer_matches(answer.text, case.answers),
                        signals=answer.signals,
                    )
                )
    return scores


def save_scores(path: Path, scores: Sequence[CaseScore], *, folds: int) -> None:
    """Write the per-case scores so other sweeps can reuse them (``--scores-in``)."""
    from index.settings import get_settings

    settings = get_settings()
    payload = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "folds": folds,
        "fold_rule": "sha256(case id) mod folds",
        "settings": {name: getattr(settings, name) for name in SCORING_SETTINGS},
        "cases": [asdict(s) for s in scores],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def load_scores(path: Path, *, folds: int) -> list[CaseScore]:
    """Read saved scores; folds are recomputed from the ids, so any ``--folds`` works."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return [CaseScore(**{**c, "fold": fold_of(c["id"], folds)}) for c in data["cases"]]


# printing ---------------------------------------------------------------------------------------
def _f(value: float | None) -> str:
    return "    -" if value is None else f"{value:.3f}"


def print_sweep(rows: Sequence[dict[str, Any]], best: dict[str, Any]) -> None:
    """Macro refusal F1, kept and accuracy per threshold, with each set's refusal F1 beside them."""
    names = list(rows[0]["sets"])
    print("threshold  macro-F1  kept   accuracy  " + "  ".join(f"{n[:12]:>12}" for n in names) + "   (refusal F1)")
    for r in rows:
        cells = "  ".join(f"{_f(r['sets'][n]['refusal_f1']):>12}" for n in names)
        flag = "  <- chosen" if r is best else ""
        figures = f"{r['threshold']:9.2f}  {r['f1']:8.3f}  {_f(r['answerable_kept'])}  {_f(r['answer_accuracy'])}"
        print(f"{figures}  {cells}{flag}")


def print_figures(title: str, row: dict[str, Any]) -> None:
    """One table: each set's figures at one threshold, then the macro-average."""
    print(f"\n{title}")
    print(f"{'set':<20} {'cases':>5}  refusal-P  refusal-R  refusal-F1  answerable-kept  accuracy")
    for name, f in row["sets"].items():
        print(
            f"{name:<20} {f['cases']:>5}  {_f(f['refusal_precision']):>9}  {_f(f['refusal_recall']):>9}  "
            f"{_f(f['refusal_f1']):>10}  {_f(f['answerable_kept']):>15}  {_f(f['answer_accuracy']):>8}"
        )
    print(
        f"{'macro':<20} {'':>5}  {'':>9}  {'':>9}  {row['f1']:10.3f}  {_f(row['answerable_kept']):>15}  "
        f"{_f(row['answer_accuracy']):>8}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", default="sample-news")
    parser.add_argument("--sets", default=None, help="comma-separated datasets (overrides DATASET)")
    parser.add_argument("--folds", type=int, default=2, help="folds for the held-out check (default 2)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep each set's index in DIR/<set>")
    parser.add_argument("--scores-out", type=Path, default=None, help="save per-case scores as JSON")
    parser.add_argument("--scores-in", type=Path, default=None, help="reuse saved scores instead of asking")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2")
    if args.scores_in:
        scores = load_scores(args.scores_in, folds=args.folds)
    else:
        names = args.sets.split(",") if args.sets else [args.dataset]
        scores = collect_scores([n.strip() for n in names if n.strip()], folds=args.folds, data_dir=args.data_dir)
    if args.scores_out:
        save_scores(args.scores_out, scores, folds=args.folds)
        print(f"per-case scores written to {args.scores_out}", file=sys.stderr)

    rows = macro_sweep(scores, THRESHOLDS)
    best = choose_threshold(rows)
    print("All cases, every threshold:")
    print_sweep(rows, best)
    print_figures(f"All cases at the threshold chosen on all of them, {best['threshold']:.2f}:", best)
    for run in cross_validate(scores, folds=args.folds, thresholds=THRESHOLDS):
        fold, t = run["held_out_fold"], run["tuned"]["threshold"]
        print(
            f"\nFold {fold} held out: threshold {t:.2f} chosen on the other fold(s) "
            f"(macro refusal F1 {run['tuned']['f1']:.3f} there)"
        )
        print_figures(f"Held-out fold {fold} at {t:.2f}:", run["held_out"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
