"""Benchmark: retrieval quality (dense / BM25 / hybrid) and `ask` latency on a BEIR set (SciFact).

    python -m eval.bench_qa [--beir ../shared/data/scifact] [--data-dir .citeqa/bench] [--limit N]

Prints nDCG@10 and recall@10 (document level) for each retrieval mode side by side, then the
latency of the full extractive `ask` (index already loaded): p50, p95, mean. The index is kept in
``--data-dir`` so a second run skips embedding.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from api.cli import tqdm_progress
from eval.datasets import EvalDataset, load_beir
from eval.metrics import ndcg_at_k, percentile, recall_at_k
from eval.runner import eval_index
from index.pipeline import DocumentIndex
from index.settings import Settings, get_settings
from qa.retrieve import retrieve
from qa.service import QAService

DEFAULT_BEIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
MODES = ("dense", "lexical", "hybrid")


def ranked_docs(passages: list, k: int) -> list[str]:
    """Document ids in first-seen order of their chunks."""
    seen: list[str] = []
    for p in passages:
        if p.doc_id not in seen:
            seen.append(p.doc_id)
        if len(seen) == k:
            break
    return seen


def measure(index: DocumentIndex, dataset: EvalDataset, *, settings: Settings, depth: int = 40) -> dict[str, Any]:
    """nDCG@10 and recall@10 per retrieval mode, then extractive ``ask`` latency, on a loaded index."""
    figures: dict[str, Any] = {}
    for mode in MODES:
        ndcgs, recalls = [], []
        for case in dataset.cases:
            found = retrieve(index, case.question, settings=settings, k=depth, mode=mode)
            docs = ranked_docs(found.passages, 10)
            ndcgs.append(ndcg_at_k(docs, case.relevance, 10))
            relevant = {d for d, g in case.relevance.items() if g > 0}
            recalls.append(recall_at_k(docs, relevant, 10))
        figures[mode] = {"ndcg@10": statistics.mean(ndcgs), "recall@10": statistics.mean(recalls)}
    service = QAService(index=index, settings=settings)
    for case in dataset.cases[:10]:  # warm-up: first calls pay for lazy initialisation
        service.ask(case.question)
    latencies = []
    refused = 0
    for case in dataset.cases:
        t0 = time.perf_counter()
        answer = service.ask(case.question)
        latencies.append((time.perf_counter() - t0) * 1000)
        refused += answer.refused
    figures.update(
        queries=len(latencies),
        ask_p50_ms=percentile(latencies, 50),
        ask_p95_ms=percentile(latencies, 95),
        ask_mean_ms=statistics.mean(latencies),
        refused=refused,
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR directory (default: shared SciFact)")
    parser.add_argument("--data-dir", type=Path, default=Path(".citeqa/bench"), help="where the index is kept")
    parser.add_argument("--limit", type=int, default=None, help="only the first N queries")
    parser.add_argument("--depth", type=int, default=40, help="chunks retrieved per query for doc ranking")
    args = parser.parse_args(argv)
    if not (args.beir / "corpus.jsonl").is_file():
        print(f"no BEIR corpus at {args.beir}", file=sys.stderr)
        return 2
    dataset = load_beir(args.beir, limit=args.limit)
    settings = get_settings()
    with eval_index(dataset, settings, data_dir=args.data_dir, progress=tqdm_progress) as index:
        stats = index.stats()
        print(f"corpus: {stats.documents} documents, {stats.chunks} chunks; {len(dataset.cases)} queries")
        figures = measure(index, dataset, settings=settings, depth=args.depth)
    for mode in MODES:
        print(f"{mode:8} nDCG@10 {figures[mode]['ndcg@10']:.4f}   recall@10 {figures[mode]['recall@10']:.4f}")
    print(
        f"ask latency (extractive, {figures['queries']} queries): p50 {figures['ask_p50_ms']:.1f} ms, "
        f"p95 {figures['ask_p95_ms']:.1f} ms, mean {figures['ask_mean_ms']:.1f} ms; refused {figures['refused']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
