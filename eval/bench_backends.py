"""Benchmark: the embedding backends side by side, in one run, on the same corpus and queries.

    python -m eval.bench_backends [--beir ../shared/data/scifact] [--backends torch,onnx,auto,...]
                                  [--limit-docs N] [--limit-queries N] [--out figures.json]

For each backend it builds a fresh index of the corpus with the real pipeline (chunking, chunk +
sentence embedding, Chroma writes, BM25), timing the whole ``add_documents``, then measures nDCG@10
and recall@10 (dense, lexical, hybrid) and the extractive ``ask`` latency with that backend
embedding the questions. ``auto`` is the default: a job this size is embedded with torch-bf16 on a
CPU with native bf16 (see ``index.embedding.BULK_MIN_CHUNKS``) and asked with ONNX. ``onnx-int8`` is
citeqa's int8 file (8-bit MatMulNBits weights, see ``index.onnx_export``).
Backends run in the order given, each in a fresh process of its own (so none finds torch or
sentence-transformers already imported by another) after the previous one finished; the load
average before and after each is printed because this machine is shared. ``load + index`` is the
model's load (imports included) plus ``add_documents``: what a user of ``citeqa index add`` waits for
beyond starting Python.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli import tqdm_progress
from eval.bench_qa import DEFAULT_BEIR, MODES, measure
from eval.datasets import EvalDataset, load_beir
from eval.runner import eval_index
from index.embedding import Embedder
from index.settings import Settings, get_settings

BACKENDS = ("torch", "onnx", "onnx-int8", "torch-bf16", "auto")


def run_backend(name: str, dataset: EvalDataset, settings: Settings, workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    embedder = Embedder.from_settings(settings.model_copy(update={"embedding_backend": name}))
    load_s = time.perf_counter() - started
    embedder.embed_queries(["warm-up so the first timed batch does not pay for lazy initialisation"])
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with eval_index(
        dataset, settings, data_dir=workdir / f"index-{name}", progress=tqdm_progress, embedder=embedder
    ) as index:
        index_s = time.perf_counter() - started
        chunks = index.stats().chunks
        figures = measure(index, dataset, settings=settings)
    indexed_with = embedder.chunk_encoder(chunks).backend  # what embedded this job (already loaded)
    return {
        "backend": name if indexed_with == embedder.backend else f"{name} ({indexed_with}+{embedder.backend})",
        "indexed_with": indexed_with,
        "asked_with": embedder.backend,
        "model_load_s": load_s,
        "index_s": index_s,
        "chunks": chunks,
        "chunks_per_s": chunks / index_s,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        **figures,
    }


def run_in_child(name: str, args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    """Run backend ``name`` in a fresh Python process with the same corpus options; its figures.

    Raises:
        RuntimeError: the child process failed.
    """
    options = ["--beir", str(args.beir), "--backends", name, "--out", str(out)]
    for flag, value in (("--limit-docs", args.limit_docs), ("--limit-queries", args.limit_queries)):
        if value is not None:
            options += [flag, str(value)]
    done = subprocess.run([sys.executable, "-m", "eval.bench_backends", *options], stdout=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"backend {name} failed (exit {done.returncode})")
    return list(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR directory (default: shared SciFact)")
    parser.add_argument("--backends", default="torch,onnx", help=f"comma-separated, of {', '.join(BACKENDS)}")
    parser.add_argument(
        "--limit-docs", type=int, default=None, help="index only the first N documents (plus the queries' gold ones)"
    )
    parser.add_argument("--limit-queries", type=int, default=None, help="ask only the first N queries")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if not (args.beir / "corpus.jsonl").is_file():
        print(f"no BEIR corpus at {args.beir}", file=sys.stderr)
        return 2
    dataset = load_beir(args.beir, limit=args.limit_queries)
    if args.limit_docs:
        # the first N documents plus every document a kept query's gold answer names
        gold = {doc for case in dataset.cases for doc in case.relevance}
        kept = [d for i, d in enumerate(dataset.documents) if i < args.limit_docs or d.id in gold]
        dataset = dataclasses.replace(dataset, documents=kept)
    settings = get_settings(chroma_url=None, chroma_host=None)
    results = []
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-backends-", ignore_cleanup_errors=True) as tmp:
        if len(backends) == 1:
            results.append(run_backend(backends[0], dataset, settings, Path(tmp)))
        else:
            for name in backends:
                print(f"--- {name}", file=sys.stderr)
                try:
                    results.extend(run_in_child(name, args, Path(tmp) / f"{name}.json"))
                except RuntimeError as exc:
                    print(exc, file=sys.stderr)
                    return 1
    print(f"corpus {args.beir} ({len(dataset.documents)} documents, {len(dataset.cases)} queries), "
          f"{os.cpu_count()} CPUs")
    header = f"{'backend':24} {'load s':>7} {'index s':>8} {'load+index':>10} {'chunks/s':>9} "
    header += " ".join(f"{m + ' nDCG':>13}" for m in MODES)
    print(header + f" {'ask p50':>8} {'ask p95':>8}  load avg")
    for r in results:
        ndcgs = " ".join(f"{r[m]['ndcg@10']:13.4f}" for m in MODES)
        total = r["model_load_s"] + r["index_s"]
        print(f"{r['backend']:24} {r['model_load_s']:7.1f} {r['index_s']:8.1f} {total:10.1f} {r['chunks_per_s']:9.1f} "
              f"{ndcgs} {r['ask_p50_ms']:8.1f} {r['ask_p95_ms']:8.1f}  {r['load_average']}")
    base = next((r for r in results if r["backend"] == "torch"), None)
    for r in results:
        if base is not None and r is not base:
            base_total, total = base["model_load_s"] + base["index_s"], r["model_load_s"] + r["index_s"]
            print(f"{r['backend']} vs torch: indexing {base['index_s'] / r['index_s']:.2f}x faster "
                  f"({base_total / total:.2f}x with the model's load), hybrid nDCG@10 "
                  f"{r['hybrid']['ndcg@10'] - base['hybrid']['ndcg@10']:+.4f}, "
                  f"ask p50 {r['ask_p50_ms'] - base['ask_p50_ms']:+.1f} ms")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
