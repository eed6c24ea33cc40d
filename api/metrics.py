"""Prometheus metrics, one registry per app (so several apps in one process, as in tests, never clash)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.types import Answer

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Request counts and latencies per route, answers and refusals, index size."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "citeqa_http_requests", "HTTP requests by method, route template and status.",
            ["method", "route", "status"], registry=r,
        )
        self.latency = Histogram(
            "citeqa_http_request_duration_seconds", "Time to the last byte of the response, by route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.in_progress = Gauge("citeqa_http_requests_in_progress", "Requests being served.", registry=r)
        self.answers = Counter(
            "citeqa_answers", "Answers given, by answerer and outcome (answered, refused).",
            ["answerer", "outcome"], registry=r,
        )
        self.refusals = Counter(
            "citeqa_answer_refusals", "Questions the indexed documents did not answer.", ["answerer"], registry=r
        )
        self.conflicts = Counter(
            "citeqa_answer_conflicts", "Answers that show conflicting sources side by side.", ["answerer"], registry=r
        )
        self.index_documents = Gauge("citeqa_index_documents", "Documents in the index.", registry=r)
        self.index_chunks = Gauge("citeqa_index_chunks", "Chunks in the index.", registry=r)
        self.index_disk_bytes = Gauge("citeqa_index_disk_bytes", "Size of embedded Chroma on disk.", registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_answer(self, answer: Answer) -> None:
        outcome = "refused" if answer.refused else "answered"
        self.answers.labels(answer.answerer, outcome).inc()
        if answer.refused:
            self.refusals.labels(answer.answerer).inc()
        if answer.has_conflict:
            self.conflicts.labels(answer.answerer).inc()

    def render(self, stats: Any | None) -> bytes:
        """The exposition text, with the index gauges refreshed from ``stats`` (an IndexStats)."""
        if stats is not None:
            self.index_documents.set(stats.documents)
            self.index_chunks.set(stats.chunks)
            if stats.disk_bytes is not None:
                self.index_disk_bytes.set(stats.disk_bytes)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Times every HTTP request to its last byte and counts it under its route template.

    Pure ASGI (not BaseHTTPMiddleware) so streamed responses are timed to their end and not buffered.
    """

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.in_progress.inc()
        try:
            await self.app(scope, receive, send_and_record)
        finally:
            self.metrics.in_progress.dec()
            # the router stores the matched route in the scope; templates keep label cardinality bounded
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
