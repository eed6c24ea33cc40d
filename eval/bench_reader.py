"""Benchmark: the trained reader alone (SQuAD 2.0 EM/F1, no-answer accuracy, refusal F1, speed).

    python -m eval.bench_reader [--model FILE.onnx ...] [--heldout] [--top-k 3] [--no-retrieved] [--limit N]

For each model: load time, the latency of one 256-token window, then

- ``heldout`` (with ``--heldout``): the 5% of ``../shared/data/squad-train-pages/train.json`` articles
  that training leaves out (by title hash); each question read against its own paragraph. The
  threshold with the best F1 here is the one the reader ships with (``NO_ANSWER_THRESHOLD``).
- ``squad2 paragraph``: ``qa-dev/squad2``; an answerable question is read against its gold paragraph,
  an unanswerable one (the set names no paragraph for it) against the paragraph most similar to it
  (bundled MiniLM embeddings), the one it was most likely written against.
- ``squad2 top-k``: every question read against its ``--top-k`` most similar paragraphs.

The squad2 figures are on hash fold 1 (``eval.calibrate.fold_of``) with the threshold picked on fold 0,
beside the figures at the shipped threshold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.calibrate import fold_of
from eval.datasets import load_qa_dev
from eval.metrics import percentile, refusal_f1, refusal_precision_recall, squad_scores
from qa.reader.model import NO_ANSWER_THRESHOLD, READER_DIR, READER_FILE, READER_SHA256, Reader

HOLDOUT_PERCENT = 5  # as qa.reader.train.Hyper.holdout_percent (importing it would load torch)
TRAIN_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad-train-pages" / "train.json"


@dataclass(frozen=True)
class Scored:
    """One question read: its fold, accepted answers, best span text, no-answer score, seconds."""

    case_id: str
    accepted: tuple[str, ...]
    best: str | None
    no_answer: float
    seconds: float


def read_all(
    reader: Reader, items: Sequence[tuple[str, str, tuple[str, ...], list[str]]], desc: str
) -> list[Scored]:
    """Read every (id, question, accepted answers, passages) item."""
    from tqdm import tqdm

    out = []
    for case_id, question, accepted, passages in tqdm(items, desc=desc, file=sys.stderr, mininterval=10):
        started = time.perf_counter()
        reading = reader.read(question, passages, top_k=1)
        seconds = time.perf_counter() - started
        best = reading.best.text if reading.best else None
        out.append(Scored(case_id, accepted, best, reading.no_answer_score, seconds))
    return out


def metrics(rows: Sequence[Scored], threshold: float) -> dict[str, float]:
    """SQuAD 2.0 EM/F1 (all, answerable), no-answer accuracy and refusal F1 at one threshold."""
    em, f1, has_f1, refused = [], [], [], []
    for row in rows:
        prediction = None if row.best is None or row.no_answer > threshold else row.best
        e, f = squad_scores(prediction, row.accepted)
        em.append(e)
        f1.append(f)
        if row.accepted:
            has_f1.append(f)
        refused.append(prediction is None)
    answerable = [bool(r.accepted) for r in rows]
    precision, recall = refusal_precision_recall(refused, answerable)
    no_ans = [not a and r for r, a in zip(refused, answerable, strict=True)]
    n_no = sum(1 for a in answerable if not a)
    return {
        "n": len(rows),
        "EM": 100 * float(np.mean(em)),
        "F1": 100 * float(np.mean(f1)),
        "HasAns F1": 100 * float(np.mean(has_f1)) if has_f1 else float("nan"),
        "NoAns acc": sum(no_ans) / n_no if n_no else float("nan"),
        "refusal F1": refusal_f1(precision, recall) or 0.0,
    }


def best_threshold(rows: Sequence[Scored]) -> float:
    """The no-answer threshold with the highest SQuAD F1 on ``rows`` (midpoints between scores)."""
    scores = sorted({r.no_answer for r in rows if np.isfinite(r.no_answer)})
    candidates = [scores[0] - 1.0] + [(a + b) / 2 for a, b in zip(scores, scores[1:], strict=False)]
    candidates.append(scores[-1] + 1.0)
    return max(candidates, key=lambda t: (metrics(rows, t)["F1"], -abs(t)))


def heldout_items() -> list[tuple[str, str, tuple[str, ...], list[str]]]:
    """The training file's held-out questions, each with its own paragraph."""
    from qa.reader.data import load_examples

    _, held = load_examples(TRAIN_FILE, holdout_percent=HOLDOUT_PERCENT)
    return [
        (e["id"], e["question"], tuple(a["text"] for a in e["answers"]), [e["context"]]) for e in held
    ]


def squad2_items(top_k: int) -> tuple[list, list]:
    """(paragraph items, top-k items) for qa-dev/squad2; similarity from the bundled MiniLM."""
    from index.embedding import Embedder

    dataset = load_qa_dev("squad2")
    docs = dataset.documents
    embedder = Embedder()
    doc_vectors = embedder.embed_queries([d.text for d in docs])
    questions = embedder.embed_queries([c.question for c in dataset.cases])
    ranked = np.argsort(-(questions @ doc_vectors.T), axis=1)
    by_id = {d.id: d.text for d in docs}
    paragraph, retrieved = [], []
    for case, order in zip(dataset.cases, ranked, strict=True):
        accepted = tuple(case.answers)
        gold = [by_id[e.doc_id] for e in case.evidence if e.doc_id in by_id]
        own = gold[:1] if case.answerable is not False and gold else [docs[int(order[0])].text]
        paragraph.append((case.id, case.question, accepted, own))
        retrieved.append((case.id, case.question, accepted, [docs[int(i)].text for i in order[:top_k]]))
    return paragraph, retrieved


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    """One block of figures, a row per setting."""
    print(f"\n{title}")
    cols = ["n", "EM", "F1", "HasAns F1", "NoAns acc", "refusal F1"]
    print(f"  {'':<40}" + "".join(f"{c:>11}" for c in cols))
    for name, m in rows.items():
        cells = [f"{m[c]:>11.0f}" if c == "n" else f"{m[c]:>11.3f}" if c in ("NoAns acc", "refusal F1")
                 else f"{m[c]:>11.1f}" for c in cols]
        print(f"  {name:<40}" + "".join(cells))


def one_window_ms(reader: Reader, passage: str, repeats: int = 20) -> float:
    """Median milliseconds to read one passage of about 256 tokens."""
    reader.read("What is this about?", [passage])
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        reader.read("What is this about?", [passage])
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=Path, help="ONNX file(s); default: the shipped one")
    parser.add_argument("--heldout", action="store_true", help="also score the training file's held-out articles")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--no-retrieved", action="store_true", help="skip the top-k setting (the slowest)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions of each set (smoke runs)")
    args = parser.parse_args(argv)
    models = args.model or [READER_DIR / READER_FILE]

    paragraph, retrieved = squad2_items(args.top_k)
    long_passage = " ".join(p[3][0] for p in paragraph)[:1200]
    held = heldout_items() if args.heldout and TRAIN_FILE.is_file() else []
    if args.limit:
        paragraph, retrieved, held = paragraph[: args.limit], retrieved[: args.limit], held[: args.limit]
    for path in models:
        started = time.perf_counter()
        # a file other than the shipped one has no recorded hash to check
        shipped = path.resolve() == (READER_DIR / READER_FILE).resolve()
        reader = Reader(path, expected_sha256=READER_SHA256 if shipped else None)
        load_s = time.perf_counter() - started
        print(f"\n== {path} ({path.stat().st_size / 1e6:.1f} MB)")
        print(f"load {load_s:.2f} s; one ~256-token window {one_window_ms(reader, long_passage):.1f} ms (median)")
        tables: dict[str, dict[str, float]] = {}
        if held:
            rows = read_all(reader, held, "heldout")
            t = best_threshold(rows)
            tables[f"heldout @ shipped {NO_ANSWER_THRESHOLD:+.2f}"] = metrics(rows, NO_ANSWER_THRESHOLD)
            tables["heldout @ 0"] = metrics(rows, 0.0)
            tables[f"heldout @ its best {t:+.2f}"] = metrics(rows, t)
        settings = [("squad2 paragraph", paragraph)]
        if not args.no_retrieved:
            settings.append((f"squad2 top-{args.top_k}", retrieved))
        for name, items in settings:
            rows = read_all(reader, items, name)
            fold0 = [r for r in rows if fold_of(r.case_id, 2) == 0]
            fold1 = [r for r in rows if fold_of(r.case_id, 2) == 1]
            t = best_threshold(fold0)
            tables[f"{name} fold1 @ fold0 best {t:+.2f}"] = metrics(fold1, t)
            tables[f"{name} fold1 @ shipped"] = metrics(fold1, NO_ANSWER_THRESHOLD)
            tables[f"{name} all @ shipped"] = metrics(rows, NO_ANSWER_THRESHOLD)
            tables[f"{name} fold1, never refusing"] = metrics(fold1, float("inf"))
            ms = [1000 * r.seconds for r in rows]
            print(f"{name}: per-question read p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms")
        print_table(f"{path.name}: SQuAD 2.0 figures", tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
