"""Benchmark: citeqa against the plain LangChain recipe a user would pick instead, on this machine.

    python -m eval.bench [--beir ../shared/data/scifact] [--limit N] [--skip-scifact] [--out bench.json]

The baseline recipe: ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``, the same
bundled all-MiniLM-L6-v2 through ``langchain_huggingface.HuggingFaceEmbeddings``, a
``langchain_chroma.Chroma`` store (embedded, persisted to a temporary directory, embeddings always
passed: Chroma's default embedding function would download a model), ``similarity_search(k=4)``.

SciFact (BEIR): nDCG@10 and recall@10 over distinct documents, indexing time (model load excluded
on both sides), query latency p50/p95. The recipe's k=4 returns at most 4 documents, which caps its
nDCG@10 and recall@10; a second row asks it for 40 chunks (deduplicated to 10 documents) to compare
the retrieval itself. citeqa's latency is the full extractive ``ask`` (retrieval + answer);
its ``search`` alone is shown too.

sample-news: answer accuracy and refusal, where the baseline's "answer" is its top passage (it never
refuses), against citeqa's extractive answer.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.datasets import EvalDataset, load_beir, load_sample_news
from eval.runner import run_eval, summarize
from index.embedding import Embedder, resolve_model
from index.pipeline import DocumentIndex
from index.settings import BUNDLED_MODEL, Settings, get_settings
from qa.service import QAService

DEFAULT_BEIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
RECIPE_K = 4
DEEP_K = 40


# the LangChain recipe ---------------------------------------------------------------------------
class LangChainRecipe:
    """Split, embed and store with the stock LangChain components; search by similarity."""

    def __init__(self, persist_dir: Path) -> None:
        from langchain_huggingface import HuggingFaceEmbeddings

        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local path never needs the hub; make sure
        model_dir, _ = resolve_model(BUNDLED_MODEL)
        self.embeddings = HuggingFaceEmbeddings(model_name=str(model_dir))
        self.persist_dir = persist_dir
        self.store: Any = None
        self.chunks = 0

    def index(self, dataset: EvalDataset, collection: str) -> float:
        """Split and add every document; returns the seconds it took."""
        from chromadb.config import Settings as ChromaSettings
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        started = time.perf_counter()
        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
        chunks = splitter.split_documents(
            [Document(page_content=d.text, metadata={"doc_id": d.id}) for d in dataset.documents]
        )
        self.store = Chroma.from_documents(
            chunks,
            embedding=self.embeddings,
            collection_name=collection,
            persist_directory=str(self.persist_dir),
            client_settings=ChromaSettings(anonymized_telemetry=False),
        )
        self.chunks = len(chunks)
        return time.perf_counter() - started

    def search(self, query: str, k: int = RECIPE_K) -> list[tuple[str, str]]:
        """(document id, chunk text) best first."""
        return [(d.metadata["doc_id"], d.page_content) for d in self.store.similarity_search(query, k=k)]


# SciFact ----------------------------------------------------------------------------------------
def bench_retrieval(dataset: EvalDataset, *, settings: Settings, embedder: Embedder, workdir: Path) -> dict[str, Any]:
    """Index the corpus with both systems and score retrieval and latency on every query."""
    citeqa_index = DocumentIndex.open(
        settings.model_copy(update={"data_dir": workdir / "citeqa", "collection": "bench"}), embedder=embedder
    )
    print(f"citeqa: indexing {len(dataset.documents)} documents ...", file=sys.stderr)
    started = time.perf_counter()
    citeqa_index.add_documents(dataset.documents)
    citeqa_seconds = time.perf_counter() - started
    service = QAService(index=citeqa_index, settings=citeqa_index.settings)
    print(f"citeqa: asking {len(dataset.cases)} queries ...", file=sys.stderr)
    results = run_eval(dataset, service, k=10)
    citeqa = summarize(results, k=10)
    search_ms = _timed(lambda q: service.search(q, k=service.settings.top_k), dataset)

    recipe = LangChainRecipe(workdir / "langchain")
    print("langchain: indexing ...", file=sys.stderr)
    recipe_seconds = recipe.index(dataset, "bench")
    recipe.search(dataset.cases[0].question)  # warm-up, as citeqa's runner does
    print("langchain: searching ...", file=sys.stderr)
    shallow, deep = [], []
    for case in dataset.cases:
        shallow.append(_rank_docs(recipe.search(case.question, RECIPE_K)))
        deep.append(_rank_docs(recipe.search(case.question, DEEP_K)))
    recipe_ms = _timed(lambda q: recipe.search(q, RECIPE_K), dataset)

    def scores(rankings: list[list[str]]) -> dict[str, float | None]:
        pairs = list(zip(dataset.cases, rankings, strict=True))
        return {
            "ndcg@10": m.mean(m.ndcg_at_k(r, c.relevance, 10) for c, r in pairs),
            "recall@10": m.mean(m.recall_at_k(r, c.gold_docs, 10) for c, r in pairs),
        }

    return {
        "queries": len(dataset.cases),
        "documents": len(dataset.documents),
        "citeqa": {
            "ndcg@10": citeqa["ndcg@10"],
            "recall@10": citeqa["doc_recall@10"],
            "chunks": citeqa_index.stats().chunks,
            "index_seconds": citeqa_seconds,
            "ask_p50_ms": citeqa["latency_p50_ms"],
            "ask_p95_ms": citeqa["latency_p95_ms"],
            "search_p50_ms": m.percentile(search_ms, 50),
            "search_p95_ms": m.percentile(search_ms, 95),
            "quote_validity": citeqa["quote_validity"],
        },
        "langchain": {
            **scores(shallow),
            **{f"{key} (k={DEEP_K})": value for key, value in scores(deep).items()},
            "chunks": recipe.chunks,
            "index_seconds": recipe_seconds,
            "search_p50_ms": m.percentile(recipe_ms, 50),
            "search_p95_ms": m.percentile(recipe_ms, 95),
        },
    }


def _rank_docs(hits: list[tuple[str, str]]) -> list[str]:
    return [str(d) for d in m.unique_in_order(doc_id for doc_id, _ in hits)][:10]


def _timed(call: Any, dataset: EvalDataset) -> list[float]:
    out = []
    for case in dataset.cases:
        started = time.perf_counter()
        call(case.question)
        out.append((time.perf_counter() - started) * 1000)
    return out


# sample-news ------------------------------------------------------------------------------------
def bench_answers(dataset: EvalDataset, *, settings: Settings, embedder: Embedder, workdir: Path) -> dict[str, Any]:
    """Answer accuracy and refusal: citeqa's answer versus the recipe's top passage."""
    index = DocumentIndex.open(
        settings.model_copy(update={"data_dir": workdir / "citeqa-news", "collection": "bench"}), embedder=embedder
    )
    index.add_documents(dataset.documents)
    results = run_eval(dataset, QAService(index=index, settings=index.settings))
    citeqa = summarize(results, k=10)

    recipe = LangChainRecipe(workdir / "langchain-news")
    recipe.index(dataset, "bench")
    answerable = [c for c in dataset.cases if c.answerable]
    tops = {c.id: recipe.search(c.question)[0][1] for c in dataset.cases}
    refusal_p, refusal_r = m.refusal_precision_recall(
        [False] * len(dataset.cases), [bool(c.answerable) for c in dataset.cases]
    )
    return {
        "cases": len(dataset.cases),
        "citeqa": {
            "answer_accuracy": citeqa["answer_accuracy"],
            "refusal_precision": citeqa["refusal_precision"],
            "refusal_recall": citeqa["refusal_recall"],
            # for context: a longer "answer" has more words that can match
            "mean_answer_chars": m.mean(len(r.answer) for r in results if not r.refused),
        },
        "langchain": {
            "answer_accuracy": m.mean(float(m.answer_matches(tops[c.id], c.answers)) for c in answerable),
            "refusal_precision": refusal_p,
            "refusal_recall": refusal_r,
            "mean_answer_chars": m.mean(len(t) for t in tops.values()),
        },
    }


# output -----------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_avg_1m_at_start": os.getloadavg()[0],
    }


def _git(*args: str) -> str:
    import subprocess

    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent, check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def render(section: str, data: dict[str, Any]) -> str:
    """Rows of metric, citeqa, baseline and the ratio citeqa / baseline."""
    ours, theirs = data["citeqa"], data["langchain"]
    names = list(dict.fromkeys([*ours, *theirs]))
    lines = [section, f"{'metric':28}{'citeqa':>12}{'langchain':>12}{'ratio':>9}"]
    for name in names:
        a, b = ours.get(name), theirs.get(name)
        base_name = name.split(" (")[0]
        if a is None and base_name != name:
            a = ours.get(base_name)
        ratio = f"{a / b:.2f}" if isinstance(a, int | float) and isinstance(b, int | float) and b else "-"
        lines.append(f"{name:28}{_fmt(a):>12}{_fmt(b):>12}{ratio:>9}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR, help="BEIR directory (default: shared SciFact)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N SciFact queries")
    parser.add_argument("--skip-scifact", action="store_true", help="run the sample-news part only")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    settings = get_settings()
    embedder = Embedder.from_settings(settings)
    report: dict[str, Any] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="citeqa-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        report["sample_news"] = bench_answers(load_sample_news(), settings=settings, embedder=embedder, workdir=work)
        print(render("sample-news (baseline answer = its top passage)", report["sample_news"]))
        if not args.skip_scifact:
            scifact = load_beir(args.beir, limit=args.limit)
            report["scifact"] = bench_retrieval(scifact, settings=settings, embedder=embedder, workdir=work)
            print()
            print(render(f"SciFact test ({report['scifact']['queries']} queries)", report["scifact"]))
    info = report["machine"]
    dirty = " + uncommitted changes" if info["uncommitted_changes"] else ""
    print(
        f"\n{info['date']}, commit {info['commit']}{dirty}, {info['cpu']}, {info['cores']} cores, "
        f"load {info['load_avg_1m_at_start']:.1f} at start"
    )
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
