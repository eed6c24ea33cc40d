"""Load and fault measurements for the HTTP API and the CLI, each against real processes.

    python -m eval.load_faults all                # everything below, on temporary data dirs
    python -m eval.load_faults load -c 8 -d 60    # /v1/ask, then streamed /v1/chat/completions
    python -m eval.load_faults writers            # two `citeqa index add` on one new data dir at once
    python -m eval.load_faults serve-and-cli      # `citeqa index add` while `citeqa serve` holds the dir
    python -m eval.load_faults kill-server        # SIGKILL the server after acknowledged uploads, restart

Every scenario starts its own `citeqa serve` / `citeqa index add` processes (the executable next to
this Python) on a fresh data directory with the sample corpus, and prints one JSON object per
scenario: error counts, latency percentiles, the server's RSS before and after, exit codes and what
survived. Nothing here is part of the test suite: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from eval.load_api import DEFAULT_QUESTIONS, percentile
from eval.processes import stop_process, wait_until_answering

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample-news"
CITEQA = str(Path(sys.executable).with_name("citeqa"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env.update({"CITEQA_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra})
    return env


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


@contextmanager
def server(
    data_dir: Path, *, load: bool = True, log: Path | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`citeqa serve` on a free port until the block ends (terminated, or already killed)."""
    port = _free_port()
    log = log or data_dir.parent / f"serve-{port}.log"
    args = [CITEQA, "serve", "--port", str(port)] + (["--load", str(SAMPLE)] if load else [])
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=_env(data_dir), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    if not wait_until_answering(f"{url}/readyz", proc, timeout=300):
        proc.kill()
        raise RuntimeError(f"citeqa serve did not become ready; see {log}")
    try:
        yield url, proc
    finally:
        stop_process(proc, timeout=30)


# load ------------------------------------------------------------------------------------------
async def _ask(client: httpx.AsyncClient, question: str) -> None:
    response = await client.post("/v1/ask", json={"question": question})
    response.raise_for_status()
    if not response.json().get("text"):
        raise ValueError("answer without text")


async def _stream(client: httpx.AsyncClient, question: str) -> None:
    body = {"model": "extractive", "stream": True, "messages": [{"role": "user", "content": question}]}
    done = final = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                done = True
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0].get("finish_reason") == "stop":
                final = "citeqa" in chunk
    if not (done and final):
        raise ValueError("stream ended without the final chunk or [DONE]")


async def _load(url: str, kind: str, *, concurrency: int, duration: float) -> dict[str, Any]:
    call = _ask if kind == "ask" else _stream
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    questions = list(DEFAULT_QUESTIONS)

    async def client_loop(client: httpx.AsyncClient, start: int, deadline: float) -> None:
        i = start
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                await call(client, questions[i % len(questions)])
                latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # every failure is counted by kind, none stops the run
                errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            i += 1

    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(client_loop(client, i, deadline) for i in range(concurrency)))
        wall = time.monotonic() - started
    ms = [x * 1000 for x in latencies]
    return {
        "route": "/v1/ask" if kind == "ask" else "/v1/chat/completions (stream)",
        "clients": concurrency,
        "seconds": round(wall, 1),
        "requests": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
    }


def scenario_load(work: Path, *, concurrency: int, duration: float) -> dict[str, Any]:
    with server(work / "load") as (url, proc):
        rss_before = rss_mib(proc.pid)
        runs = [asyncio.run(_load(url, kind, concurrency=concurrency, duration=duration)) for kind in ("ask", "stream")]
        rss_after = rss_mib(proc.pid)
    return {"scenario": "load", "runs": runs, "server_rss_mib_before": rss_before, "server_rss_mib_after": rss_after}


# faults ----------------------------------------------------------------------------------------
def _index_check(data_dir: Path) -> dict[str, Any]:
    done = subprocess.run([CITEQA, "index", "check", "--json"], env=_env(data_dir), capture_output=True, text=True,
                          timeout=300, check=False)
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return {"ok": report.get("ok"), "documents": report.get("documents"), "chunks": report.get("chunks")}


def scenario_writers(work: Path) -> dict[str, Any]:
    """Two `citeqa index add` processes on one new embedded data dir, started at the same moment."""
    data_dir = work / "writers"
    procs = [
        subprocess.Popen([CITEQA, "index", "add", str(SAMPLE)], env=_env(data_dir), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    return {
        "scenario": "two index add at once",
        "exit_codes": [p.returncode for p in procs],
        "summaries": [out.strip().splitlines()[-1] if out.strip() else "" for out, _ in outputs],
        "errors": [line for _, err in outputs for line in err.splitlines() if line.startswith("citeqa:")],
        "index_after": _index_check(data_dir),
    }


def scenario_serve_and_cli(work: Path) -> dict[str, Any]:
    """`citeqa index add` on the data dir a running `citeqa serve` holds."""
    data_dir = work / "serve-cli"
    note = work / "harbour-note.txt"
    note.write_text("The Velmar harbour channel is 14 metres deep after dredging.\n")
    with server(data_dir) as (url, _proc):
        t0 = time.monotonic()
        done = subprocess.run([CITEQA, "index", "add", str(note)], env=_env(data_dir, CITEQA_LOCK_TIMEOUT="5"),
                              capture_output=True, text=True, timeout=600, check=False)
        waited = round(time.monotonic() - t0, 1)
        upload = httpx.post(f"{url}/v1/documents", files={"file": ("harbour-note.txt", note.read_bytes())}, timeout=120)
        listed = [d["id"] for d in httpx.get(f"{url}/v1/documents", timeout=60).json()["documents"]]
    return {
        "scenario": "index add while serve runs",
        "cli_exit_code": done.returncode,
        "cli_error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "",
        "cli_seconds": waited,
        "upload_through_api": upload.status_code,
        "documents_after": listed,
        "index_after": _index_check(data_dir),
    }


def scenario_kill_server(work: Path, *, uploads: int = 20) -> dict[str, Any]:
    """Upload documents one by one, SIGKILL the server, restart it: is every acknowledged one there?"""
    data_dir = work / "kill"
    acknowledged: list[str] = []
    with server(data_dir) as (url, proc):
        for i in range(uploads):
            body = {"id": f"note-{i:03d}", "title": f"Harbour note {i}",
                    "text": f"Pier {i} of the Velmar harbour was repaired in week {i + 1}."}
            response = httpx.post(f"{url}/v1/documents", json=body, timeout=120)
            if response.status_code in (200, 201):
                acknowledged.append(body["id"])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with server(data_dir, load=False) as (url, _proc):
        present = {d["id"] for d in httpx.get(f"{url}/v1/documents", timeout=60).json()["documents"]}
        answer = httpx.post(f"{url}/v1/ask", json={"question": "When was pier 7 of the Velmar harbour repaired?"},
                            timeout=120).json()
    return {
        "scenario": "SIGKILL server after uploads, restart",
        "acknowledged": len(acknowledged),
        "present_after_restart": len(present & set(acknowledged)),
        "lost": sorted(set(acknowledged) - present),
        "answer_cites": sorted({c["doc_id"] for c in answer.get("citations", [])}),
        "index_after": _index_check(data_dir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=["all", "load", "writers", "serve-and-cli", "kill-server"])
    parser.add_argument("-c", "--concurrency", type=int, default=8)
    parser.add_argument("-d", "--duration", type=float, default=60.0, help="seconds per load run (default 60)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citeqa-faults-") as tmp:
        work = Path(tmp)
        todo = ["load", "writers", "serve-and-cli", "kill-server"] if args.scenario == "all" else [args.scenario]
        for name in todo:
            if name == "load":
                result = scenario_load(work, concurrency=args.concurrency, duration=args.duration)
            elif name == "writers":
                result = scenario_writers(work)
            elif name == "serve-and-cli":
                result = scenario_serve_and_cli(work)
            else:
                result = scenario_kill_server(work)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
