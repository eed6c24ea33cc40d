"""Calibrate the extractive answerer's refusal threshold on an eval set.

    python -m eval.calibrate [DATASET] [--data-dir DIR]

Asks every case once with refusal switched off, records the evidence strength the answerer
computed (``Answer.score``), then sweeps thresholds and prints refusal precision/recall and the
share of answerable cases kept, per threshold. The chosen threshold is the middle of the longest
run of thresholds with the best refusal F1 (the widest margin on both sides); see eval/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from pathlib import Path

from api.cli import tqdm_progress
from eval.datasets import resolve_dataset
from eval.runner import eval_index
from index.settings import get_settings
from qa.service import QAService


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", nargs="?", default="sample-news")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    dataset = resolve_dataset(args.dataset)
    settings = get_settings(refusal_threshold=-1.0)
    with eval_index(dataset, settings, data_dir=args.data_dir, progress=tqdm_progress) as index:
        service = QAService(index=index, settings=settings)
        # Soft matching normally runs only near the threshold; a sweep needs it everywhere.
        service.extractive.soft_band = math.inf
        scores: list[tuple[float, bool]] = []
        for case in dataset.cases:
            if case.answerable is None:
                continue
            answer = service.ask(case.question, history=list(case.history))
            scores.append((answer.score, case.answerable))
            mark = "A" if case.answerable else "-"
            print(f"{answer.score:7.3f} {mark} {case.id:12} {case.question[:70]}")
    thresholds = [round(0.20 + 0.01 * i, 2) for i in range(41)]
    rows = sweep(scores, thresholds)
    best = choose_threshold(rows)
    print("\nthreshold  refusal-P  refusal-R  refusal-F1  answerable-kept")
    for r in rows:
        flag = "  <- best" if r is best else ""
        print(
            f"{r['threshold']:9.2f}  {r['precision']:9.3f}  {r['recall']:9.3f}  {r['f1']:10.3f}  "
            f"{r['answerable_kept']:15.3f}{flag}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
