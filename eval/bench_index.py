"""Benchmark: indexing throughput on SciFact against the model's raw embedding throughput.

    python -m eval.bench_index [--corpus ../shared/data/scifact] [--limit N] [--batch-size N]

Indexes the corpus into a fresh temporary data directory with the real pipeline
(``DocumentIndex.add_documents``: chunking, chunk+sentence embedding, Chroma writes, BM25 rebuild)
and reports chunks per second. Then, in the same run on the same chunk texts, it times the bare
forward pass of the backend in use (pooled vectors only, same batch size) and prints both and their
ratio: how much of the model's speed the pipeline keeps. ``CITEQA_EMBEDDING_BACKEND`` picks the
backend (``eval.bench_backends`` compares backends in one run). Model loading is timed separately
and excluded from both. Also prints the index size on disk.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from index.chunking import chunk_document
from index.embedding import Embedder
from index.loaders import load_paths
from index.pipeline import DocumentIndex
from index.settings import get_settings

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def dir_size(path: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of every file under ``path``."""
    apparent = allocated = 0
    for item in path.rglob("*"):
        if item.is_file():
            info = item.stat()
            apparent += info.st_size
            allocated += info.st_blocks * 512
    return apparent, allocated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus.jsonl or a directory holding it (default: SciFact)"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N documents (quick run)")
    parser.add_argument("--batch-size", type=int, default=None, help="embedding batch size (default: CITEQA_*)")
    args = parser.parse_args(argv)
    corpus = args.corpus / "corpus.jsonl" if args.corpus.is_dir() else args.corpus
    if not corpus.is_file():
        print(f"no corpus at {corpus}", file=sys.stderr)
        return 2

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-index-") as tmp:
        overrides: dict[str, object] = {"data_dir": Path(tmp) / "data", "collection": "bench"}
        if args.batch_size:
            overrides["embedding_batch_size"] = args.batch_size
        # A fresh embedded index, whatever CITEQA_CHROMA_* say: the figures are for this machine's disk.
        settings = get_settings(**overrides, chroma_url=None, chroma_host=None)

        started = time.perf_counter()
        embedder = Embedder.from_settings(settings)
        model_load = time.perf_counter() - started
        embedder.embed_queries(["warm-up so the first timed batch does not pay for lazy initialisation"])
        index = DocumentIndex.open(settings, embedder=embedder)

        started = time.perf_counter()
        loaded = load_paths([corpus])
        docs = loaded.documents[: args.limit] if args.limit else loaded.documents
        report = index.add_documents(docs, progress=lambda total, desc: tqdm(total=total, desc=desc, unit="chunk"))
        pipeline_seconds = time.perf_counter() - started
        stats = index.stats()
        if loaded.failures or report.failed:
            for failure in [*loaded.failures, *report.failed][:10]:
                print(f"FAILED {failure.source}: {failure.reason}", file=sys.stderr)

        # The same chunk texts, in the same process, through the bare model.
        texts = [
            c.text
            for doc in docs
            for c in chunk_document(doc, chunk_size=settings.chunk_size, overlap=settings.chunk_overlap)
        ]
        if len(texts) != stats.chunks:
            print(f"warning: {len(texts)} chunk texts but {stats.chunks} chunks indexed", file=sys.stderr)
        started = time.perf_counter()
        print("raw embedding of the same chunk texts ...", file=sys.stderr)
        embedder.embed_queries(texts)
        raw_seconds = time.perf_counter() - started
        apparent, allocated = dir_size(settings.data_dir)

    import torch

    pipeline_rate = stats.chunks / pipeline_seconds
    raw_rate = len(texts) / raw_seconds
    rows = [
        ("corpus", str(corpus)),
        ("machine", f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
                    f"({torch.get_num_threads()} threads)"),
        ("load average", f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other processes share the CPUs)"),
        ("model", f"{embedder.identity} on {embedder.backend} (load {model_load:.1f} s, not counted)"),
        ("settings", f"chunk_size={settings.chunk_size} overlap={settings.chunk_overlap} "
                     f"batch_size={settings.embedding_batch_size}"),
        ("documents", f"{stats.documents:,} ({len(loaded.failures)} failed to load)"),
        ("chunks", f"{stats.chunks:,} ({stats.chunks / max(stats.documents, 1):.2f} per document)"),
        ("pipeline wall time", f"{pipeline_seconds:.1f} s (load + chunk + embed + Chroma + BM25)"),
        ("pipeline throughput", f"{pipeline_rate:.1f} chunks/s"),
        ("raw encode time", f"{raw_seconds:.1f} s ({embedder.backend} forward pass and pooling only, same texts)"),
        ("raw throughput", f"{raw_rate:.1f} chunks/s"),
        ("pipeline / raw", f"{pipeline_rate / raw_rate:.2f}"),
        ("index size on disk", f"{apparent / 1e6:.1f} MB ({allocated / 1e6:.1f} MB allocated)"),
        ("BM25", f"{stats.lexical_chunks:,} chunks, {stats.lexical_terms:,} terms"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
