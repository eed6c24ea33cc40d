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

from api.cli import tqdm_progress
from eval.datasets import load_beir
from eval.metrics import ndcg_at_k, percentile, recall_at_k
from eval.runner import eval_index
from index.settings import get_settings
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
        for mode in MODES:
            ndcgs, recalls = [], []
            for case in dataset.cases:
                found = retrieve(index, case.question, settings=settings, k=args.depth, mode=mode)
                docs = ranked_docs(found.passages, 10)
                ndcgs.append(ndcg_at_k(docs, case.relevance, 10))
                relevant = {d for d, g in case.relevance.items() if g > 0}
                recalls.append(recall_at_k(docs, relevant, 10))
            print(f"{mode:8} nDCG@10 {statistics.mean(ndcgs):.4f}   recall@10 {statistics.mean(recalls):.4f}")
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
        print(
            f"ask latency (extractive, {len(latencies)} queries): p50 {percentile(latencies, 50):.1f} ms, "
            f"p95 {percentile(latencies, 95):.1f} ms, mean {statistics.mean(latencies):.1f} ms; "
            f"refused {refused}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
