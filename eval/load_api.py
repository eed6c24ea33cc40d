"""Load test for a running citeqa server: N concurrent clients asking questions for T seconds.

    citeqa serve --load data/sample-news &
    python -m eval.load_api --concurrency 8 --duration 30

Prints requests/s, client-side latency percentiles (p50, p95, p99, max), the server's own ``total``
time per answer (``timings_ms``; the gap is HTTP, JSON and queueing) and the error count. Each
client sends its next request as soon as the previous one returns (closed loop), cycling through the
questions from a different starting point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Sample-news questions of every kind: plain facts, a conflict, a follow-up-free paraphrase, refusals.
DEFAULT_QUESTIONS = (
    "Who was killed by a mortar shell?",
    "How many deaths did the bombardments cause?",
    "Where were the mass graves found and how many bodies were in them?",
    "Who is Rakan Said?",
    "Who controls Abu Kamal?",
    "Did ISIS hold Boukamal?",
    "Which forces fought in the battle for Albu Kamal?",
    "What is the capital of France?",
    "Who won the 2018 World Cup?",
)


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    server_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    refused: int = 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


async def client_loop(
    client: httpx.AsyncClient, questions: list[str], start: int, deadline: float, results: Results
) -> None:
    i = start
    while time.perf_counter() < deadline:
        question = questions[i % len(questions)]
        i += 1
        began = time.perf_counter()
        try:
            response = await client.post("/v1/ask", json={"question": question})
        except httpx.HTTPError as exc:
            results.errors[type(exc).__name__] += 1
            continue
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            results.errors[f"HTTP {response.status_code}"] += 1
            continue
        answer = response.json()
        results.latencies.append(elapsed)
        results.server_ms.append(float(answer.get("timings_ms", {}).get("total", 0.0)))
        results.refused += bool(answer.get("refused"))


async def run(url: str, *, concurrency: int, duration: float, warmup: float, questions: list[str],
              api_key: str | None) -> tuple[Results, float]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60, limits=limits) as client:
        ready = await client.get("/readyz")
        if ready.status_code != 200:
            raise SystemExit(f"{url} is not ready: {ready.status_code} {ready.text}")
        if warmup > 0:  # first requests pay for lazy initialisation; not part of the figures
            await asyncio.gather(*(client_loop(client, questions, i, time.perf_counter() + warmup, Results())
                                   for i in range(concurrency)))
        results = Results()
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(client_loop(client, questions, i * 3, deadline, results) for i in range(concurrency)))
        return results, time.perf_counter() - started


def summary(results: Results, wall: float, *, concurrency: int, url: str) -> dict[str, Any]:
    ms = [x * 1000 for x in results.latencies]
    return {
        "url": url,
        "concurrency": concurrency,
        "duration_s": round(wall, 2),
        "requests": len(ms),
        "requests_per_s": round(len(ms) / wall, 2) if wall else 0.0,
        "latency_ms": {q: round(percentile(ms, v), 1) for q, v in (("p50", 50), ("p95", 95), ("p99", 99))}
        | {"max": round(max(ms, default=0.0), 1)},
        "server_total_ms": {q: round(percentile(results.server_ms, v), 1) for q, v in (("p50", 50), ("p95", 95))},
        "refused": results.refused,
        "errors": sum(results.errors.values()),
        "errors_by_kind": dict(results.errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("-d", "--duration", type=float, default=30.0, help="seconds to measure (default 30)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load first (default 2)")
    parser.add_argument("--questions", type=Path, help="file with one question per line (default: sample-news)")
    parser.add_argument("--api-key", default=os.environ.get("CITEQA_API_KEY"), help="bearer key (or CITEQA_API_KEY)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    questions = list(DEFAULT_QUESTIONS)
    if args.questions:
        questions = [q.strip() for q in args.questions.read_text(encoding="utf-8").splitlines() if q.strip()]
    if not questions or args.concurrency < 1 or args.duration <= 0:
        parser.error("need at least one question, --concurrency >= 1 and --duration > 0")
    try:
        results, wall = asyncio.run(run(args.url, concurrency=args.concurrency, duration=args.duration,
                                        warmup=args.warmup, questions=questions, api_key=args.api_key))
    except httpx.HTTPError as exc:
        print(f"load_api: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    report = summary(results, wall, concurrency=args.concurrency, url=args.url)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        lat, srv = report["latency_ms"], report["server_total_ms"]
        print(f"{report['requests']} requests in {report['duration_s']} s from {args.concurrency} clients "
              f"against {args.url}/v1/ask")
        print(f"throughput  {report['requests_per_s']} requests/s")
        print(f"latency     p50 {lat['p50']} ms   p95 {lat['p95']} ms   p99 {lat['p99']} ms   max {lat['max']} ms")
        print(f"server time p50 {srv['p50']} ms   p95 {srv['p95']} ms (timings_ms.total)")
        print(f"refused     {report['refused']}   errors {report['errors']} {report['errors_by_kind'] or ''}")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
