"""Benchmark: how citeqa holds up as the collection grows (10k, 30k, 100k chunks by default).

    python -m eval.bench_scale [--sizes 10000,30000,100000] [--questions 200] [--cache ../scale-cache]

Collections are built from SciFact (embedded once, then replicated with small perturbations: see
``eval/scale_corpus.py``) in the cache directory and reused by later runs. At each size it
measures, against a real ``citeqa serve`` subprocess over HTTP: time from process start to
``/readyz`` answering 200, RSS after start and after the questions, ``/v1/ask`` and
``/v1/search`` latency (p50/p95, sequential, SciFact test queries); then disk use per chunk (and
the same chunks written by the plain LangChain + Chroma recipe), and adding 100 new documents
with the library call ``citeqa index add`` makes (opening the index, adding; then deleting ten
of them one by one, timed, and the rest at once) compared with adding them to an empty
collection. Wall times and CPU seconds of the server process are both printed: on a shared
machine the CPU figures move much less with the other jobs. Prints a table; ``--out`` writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import httpx

from eval.datasets import load_beir
from eval.metrics import percentile
from eval.scale_corpus import Seed, build_collection, build_langchain, forget_clients, load_seed, replicas
from index.embedding import Embedder
from index.models import Document
from index.pipeline import DocumentIndex
from index.settings import Settings, get_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BEIR = REPO.parent / "shared" / "data" / "scifact"
DEFAULT_CACHE = REPO.parent / "scale-cache"
TIMED_DELETES = 10  # one write each: what deleting a document costs
TARGETS = {"ask_p50_ms": 50.0, "ask_p95_ms": 100.0, "rss_mb": 2048.0, "ready_s": 20.0, "add_ratio": 2.0}


def rss_mb(pid: int) -> tuple[float, float]:
    """Resident and peak resident memory of a process (MB), from /proc."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (s), from /proc: unlike wall time, it barely
    moves when other jobs compete for the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def disk_bytes(path: Path) -> int:
    """Allocated bytes under ``path`` (what ``du`` counts)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def _p(values: Sequence[float], q: float) -> float:
    return round(float(percentile(values, q) or 0.0), 1)


def start_serve(data_dir: Path, *, port: int, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``citeqa serve`` on ``data_dir`` and wait until ``/readyz`` answers 200."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "CITEQA_DATA_DIR": str(data_dir), "CITEQA_COLLECTION": "citeqa"}
    started = time.perf_counter()
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"citeqa serve exited with {proc.returncode}; see {log}")
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
    except BaseException:
        stop_serve(proc)
        raise
    ready = {"ready_s": round(time.perf_counter() - started, 2), "ready_cpu_s": round(cpu_seconds(proc.pid), 1),
             "rss_start_mb": round(rss_mb(proc.pid)[0])}
    return proc, ready


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure_cold_start(data_dir: Path, *, port: int, log: Path) -> dict[str, Any]:
    """Start-up without the local snapshot (see ``index/snapshot.py``): every chunk read from Chroma
    and analysed again, as on the first start after a build; that start writes the snapshot."""
    for old in (data_dir / "snapshots").glob("*.pickle"):
        old.unlink()
    proc, ready = start_serve(data_dir, port=port, log=log)
    stop_serve(proc)
    snapshots = list((data_dir / "snapshots").glob("*.pickle"))
    return {"ready_cold_s": ready["ready_s"], "ready_cold_cpu_s": ready["ready_cpu_s"],
            "snapshot_bytes": sum(p.stat().st_size for p in snapshots)}


def measure_serve(data_dir: Path, questions: list[str], *, port: int, log: Path) -> dict[str, Any]:
    """Start ``citeqa serve`` on ``data_dir``, wait until ready, ask, search, stop."""
    proc, ready = start_serve(data_dir, port=port, log=log)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for question in questions[:3]:  # warm-up: first-use caches, lazy imports
                client.post("/v1/ask", json={"question": question}).raise_for_status()
            ask_ms, server_ms = [], []
            cpu0 = cpu_seconds(proc.pid)
            for question in questions:
                t = time.perf_counter()
                reply = client.post("/v1/ask", json={"question": question})
                ask_ms.append((time.perf_counter() - t) * 1000)
                reply.raise_for_status()
                server_ms.append(reply.json().get("timings_ms", {}))
            rss_after, rss_peak = rss_mb(proc.pid)
            cpu1 = cpu_seconds(proc.pid)
            search_ms = []
            for question in questions:
                t = time.perf_counter()
                client.get("/v1/search", params={"q": question}).raise_for_status()
                search_ms.append((time.perf_counter() - t) * 1000)
            cpu2 = cpu_seconds(proc.pid)
    finally:
        stop_serve(proc)
    parts = {key: _p([t.get(key, 0.0) for t in server_ms], 50) for key in ("sync", "retrieve", "answer")}
    return {
        **ready, "rss_after_mb": round(rss_after),
        "rss_peak_mb": round(rss_peak), "ask_p50_ms": _p(ask_ms, 50), "ask_p95_ms": _p(ask_ms, 95),
        "search_p50_ms": _p(search_ms, 50), "search_p95_ms": _p(search_ms, 95), "ask_server_p50_ms": parts,
        "ask_cpu_ms": round((cpu1 - cpu0) * 1000 / len(questions), 1),
        "search_cpu_ms": round((cpu2 - cpu1) * 1000 / len(questions), 1),
    }


def measure_add(data_dir: Path, docs: list[Document], settings: Settings, embedder: Embedder) -> dict[str, Any]:
    """Open the index, add ``docs`` (embedded for real), then delete them again, each timed."""
    local = settings.model_copy(update={"data_dir": data_dir, "collection": "citeqa"})
    t0 = time.perf_counter()
    index = DocumentIndex.open(local, embedder=embedder)
    t1 = time.perf_counter()
    report = index.add_documents(docs)
    t2 = time.perf_counter()
    if len(report.added) != len(docs):
        raise RuntimeError(f"expected {len(docs)} new documents, got {len(report.added)} added")
    for doc in docs[:TIMED_DELETES]:
        index.delete(doc.id)
    t3 = time.perf_counter()
    # the rest go in one untimed write, straight through the store, to leave the collection as it was
    rest = [doc.id for doc in docs[TIMED_DELETES:]]
    index.store.delete_documents(rest)
    index.store.delete_chunks(sorted(cid for ids in index.store.chunk_ids_of(rest).values() for cid in ids))
    index.store.bump_generation()
    del index
    forget_clients()
    gc.collect()
    return {"open_s": round(t1 - t0, 2), "add_s": round(t2 - t1, 2),
            "delete_ms": round((t3 - t2) * 1000 / min(TIMED_DELETES, len(docs))),
            "chunks_embedded": report.chunks_embedded}


def run_size(target: int, *, seed: Seed, args: argparse.Namespace, settings: Settings, embedder: Embedder,
             questions: list[str], new_docs: list[Document], previous: Path | None, empty_add: dict[str, Any]
             ) -> tuple[dict[str, Any], Path]:
    data_dir = args.cache / f"citeqa-{target}"
    built = build_collection(data_dir, target_chunks=target, seed=seed, settings=settings, embedder=embedder,
                             grow_from=previous)
    row: dict[str, Any] = {"target": target, **built}
    disk = disk_bytes(data_dir / "chroma")
    row["disk_mb"] = round(disk / 2**20)
    row["bytes_per_chunk"] = round(disk / built["chunks"])
    if not args.skip_langchain:
        lc_dir = args.cache / f"langchain-{target}"
        if not lc_dir.with_suffix(".json").is_file():
            written = build_langchain(lc_dir, target_chunks=target, seed=seed, settings=settings)
            lc_dir.with_suffix(".json").write_text(json.dumps({"chunks": written}))
        written = json.loads(lc_dir.with_suffix(".json").read_text())["chunks"]
        row["langchain_bytes_per_chunk"] = round(disk_bytes(lc_dir) / written)
    print(f"[{target}] starting without a snapshot ...", flush=True)
    row.update(measure_cold_start(data_dir, port=args.port, log=args.cache / "serve.log"))
    row["snapshot_bytes_per_chunk"] = round(row.pop("snapshot_bytes") / built["chunks"])
    print(f"[{target}] serving {built['chunks']} chunks ...", flush=True)
    row.update(measure_serve(data_dir, questions, port=args.port, log=args.cache / "serve.log"))
    print(f"[{target}] adding {len(new_docs)} documents ...", flush=True)
    added = measure_add(data_dir, new_docs, settings, embedder)
    row.update({f"add_{k}": v for k, v in added.items()})
    row["add_ratio"] = round(added["add_s"] / empty_add["add_s"], 2)
    row["add_cli_ratio"] = round((added["open_s"] + added["add_s"]) / (empty_add["open_s"] + empty_add["add_s"]), 2)
    print(json.dumps(row), flush=True)
    return row, data_dir


COLUMNS = [
    ("chunks", "chunks"), ("ready_cold_s", "ready s, no snapshot"), ("ready_s", "ready s"),
    ("ready_cpu_s", "ready CPU s"), ("rss_start_mb", "RSS start MB"),
    ("rss_after_mb", "RSS after MB"), ("ask_p50_ms", "ask p50 ms"), ("ask_p95_ms", "ask p95 ms"),
    ("ask_cpu_ms", "ask CPU ms"), ("search_p50_ms", "search p50 ms"), ("search_p95_ms", "search p95 ms"),
    ("search_cpu_ms", "search CPU ms"), ("bytes_per_chunk", "disk B/chunk"),
    ("snapshot_bytes_per_chunk", "snapshot B/chunk"),
    ("langchain_bytes_per_chunk", "LangChain B/chunk"), ("add_open_s", "open s"), ("add_add_s", "add 100 s"),
    ("add_ratio", "add vs empty"), ("add_delete_ms", "delete ms/doc"),
]


def render(rows: list[dict[str, Any]], empty: dict[str, Any]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(key, "-")) for key, _ in COLUMNS) + " |")
    lines.append(f"\nempty collection: open {empty['open_s']} s, add 100 documents {empty['add_s']} s "
                 f"({empty['chunks_embedded']} chunks embedded), delete {empty['delete_ms']} ms per document")
    if rows:
        big = rows[-1]
        checks = [("ask p50 ms", big.get("ask_p50_ms"), TARGETS["ask_p50_ms"]),
                  ("ask p95 ms", big.get("ask_p95_ms"), TARGETS["ask_p95_ms"]),
                  ("RSS after MB", big.get("rss_after_mb"), TARGETS["rss_mb"]),
                  ("ready s", big.get("ready_s"), TARGETS["ready_s"]),
                  ("add vs empty", big.get("add_ratio"), TARGETS["add_ratio"])]
        verdicts = [f"{name} {got} (target <= {limit}: {'ok' if got is not None and got <= limit else 'MISSED'})"
                    for name, got, limit in checks]
        lines.append(f"targets at {big['chunks']} chunks: " + "; ".join(verdicts))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,30000,100000", help="chunk counts, comma-separated, ascending")
    parser.add_argument("--questions", type=int, default=200, help="SciFact test queries asked per size")
    parser.add_argument("--new-docs", type=int, default=100, help="documents added at each size")
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="seed export and collections (kept)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--skip-langchain", action="store_true", help="no LangChain + Chroma disk comparison")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if not (args.beir / "corpus.jsonl").is_file():
        print(f"no BEIR corpus at {args.beir}", file=sys.stderr)
        return 2
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = get_settings()
    embedder = Embedder(settings.embedding_model, expected_sha256=settings.embedding_sha256,
                        batch_size=settings.embedding_batch_size)
    print(f"{platform.node()}: {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    seed = load_seed(args.cache, args.beir, settings, embedder)
    print(f"seed: {len(seed.documents)} documents, {seed.chunk_count} chunks", flush=True)
    questions = [case.question for case in load_beir(args.beir).cases[: args.questions]]
    new_docs = [r.document for r in islice(replicas(seed, settings, prefix="new"), len(seed.documents),
                                           len(seed.documents) + args.new_docs)]
    with tempfile.TemporaryDirectory(prefix="citeqa-scale-empty-") as tmp:
        empty = measure_add(Path(tmp), new_docs, settings, embedder)
    print(f"empty collection: {json.dumps(empty)}", flush=True)
    rows: list[dict[str, Any]] = []
    previous: Path | None = None
    for target in sorted(int(s) for s in args.sizes.split(",")):
        row, previous = run_size(target, seed=seed, args=args, settings=settings, embedder=embedder,
                                 questions=questions, new_docs=new_docs, previous=previous, empty_add=empty)
        rows.append(row)
    print(f"\nload average at the end {os.getloadavg()}\n")
    print(render(rows, empty))
    if args.out:
        args.out.write_text(json.dumps({"empty_add": empty, "sizes": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
