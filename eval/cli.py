"""``citeqa eval``: registered into the main CLI by :func:`register` (see ``api/cli.py``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from index.settings import Settings

EXIT_OK, EXIT_FAILED = 0, 1


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Score answers, citations and refusals on a dataset; fail on a drop below a baseline."""
    from api.cli import tqdm_progress
    from eval.datasets import resolve_dataset
    from eval.errors import BaselineError
    from eval.report import (
        baseline_view,
        compare_with_baseline,
        invariant_failures,
        keep_worse,
        load_baseline,
        render_problems,
        render_table,
    )
    from eval.runner import build_report, eval_index, run_eval
    from qa.service import QAService

    if args.keep_worse and not args.save_baseline:
        raise BaselineError("--keep-worse merges into the --save-baseline file: give --save-baseline FILE")
    dataset = resolve_dataset(args.dataset, corpus=args.corpus, split=args.split)
    if args.fold is not None:
        from eval.calibrate import in_fold

        dataset.cases = in_fold(dataset.cases, args.fold)
    if args.limit:
        dataset.cases = dataset.cases[: args.limit]
    baseline = load_baseline(args.baseline) if args.baseline else None  # fail before the slow part
    print(
        f"{dataset.name}: {len(dataset.cases)} cases over {len(dataset.documents)} documents; "
        "loading the model and indexing ...",
        file=sys.stderr,
    )
    with eval_index(dataset, settings, data_dir=args.data_dir, progress=tqdm_progress) as index:
        service = QAService(index=index, settings=index.settings)
        results = run_eval(dataset, service, k=args.k, progress=_case_progress)
        report = build_report(dataset, results, service=service, k=args.k)

    if args.out:
        _write_json(args.out, report)
        print(f"report written to {args.out}", file=sys.stderr)
    if args.save_baseline:
        previous = load_baseline(args.save_baseline) if args.keep_worse and args.save_baseline.exists() else None
        _write_json(args.save_baseline, baseline_view(report) if previous is None else keep_worse(previous, report))
        print(f"baseline written to {args.save_baseline}", file=sys.stderr)
    print(render_table(report))
    print()
    print(render_problems(report, limit=None if args.show_all else 20))

    failures = (
        compare_with_baseline(report, baseline, tolerance=args.tolerance)
        if baseline is not None
        else invariant_failures(report)
    )
    if failures:
        print(f"\nFAILED: {len(failures)} metric(s) below the gate:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return EXIT_FAILED
    if baseline is not None:
        print(f"\nno metric below {args.baseline} (tolerance {args.tolerance})", file=sys.stderr)
    return EXIT_OK


def _case_progress(total: int, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="case", file=sys.stderr, disable=None, dynamic_ncols=True)


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def register(sub: Any) -> None:
    """Add ``eval`` to the ``citeqa`` subcommands."""
    from eval.report import DEFAULT_TOLERANCE
    from eval.runner import DEFAULT_K

    p = sub.add_parser("eval", help=cmd_eval.__doc__, description=cmd_eval.__doc__)
    p.add_argument(
        "dataset",
        metavar="DATASET",
        help="'sample-news', a qa-dev set (squad2, multihop-rag, rgb-counterfactual), BEIR directory, QA JSONL file",
    )
    p.add_argument("--corpus", type=Path, default=None, help="documents a QA JSONL file is asked against")
    p.add_argument("--split", default="test", help="BEIR qrels split (default: test)")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the eval index here and reuse it next run (default: a temporary directory)",
    )
    p.add_argument("--k", type=int, default=DEFAULT_K, help=f"cut-off for recall@k (default {DEFAULT_K})")
    p.add_argument("--limit", type=int, default=None, help="ask only the first N cases")
    p.add_argument(
        "--fold",
        type=int,
        choices=(0, 1),
        default=None,
        help="ask only the cases of this fold of two (sha256 of the case id mod 2, as calibration splits them)",
    )
    p.add_argument("--out", type=Path, default=None, help="write the full JSON report (every case) here")
    p.add_argument("--baseline", type=Path, default=None, help="fail when a metric drops below this report")
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help=f"allowed drop per metric before --baseline fails (default {DEFAULT_TOLERANCE})",
    )
    p.add_argument("--save-baseline", type=Path, default=None, help="write this run's metrics as a baseline")
    p.add_argument(
        "--keep-worse",
        action="store_true",
        help="with --save-baseline: where the file exists, keep each gated metric's worse figure of it and "
        "this run (a baseline that holds on every CPU it was saved on)",
    )
    p.add_argument("--show-all", action="store_true", help="list every failing case, not just the first 20")
    p.set_defaults(func=cmd_eval)
