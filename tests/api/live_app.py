"""A real citeqa app served by uvicorn on 127.0.0.1, over the sample corpus (real model, real Chroma).

Not a conftest: ``tests/`` modules import the root conftest as ``conftest``, which a second
conftest.py here would shadow. Test modules import these helpers and declare module-scoped fixtures.
The sample index and its QA service are built once per session and shared by every app the tests
start, so the test process loads one embedding model and embeds the corpus once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, free_port, make_settings, wait_for_port

from api.app import create_app
from index.embedding import Embedder
from index.pipeline import DocumentIndex
from index.settings import Settings
from qa.service import QAService

_SHARED: dict[str, QAService] = {}


def sample_qa(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> QAService:
    """The sample corpus in an index of its own (tests add and delete documents, then restore it)."""
    if "qa" not in _SHARED:
        settings = make_settings(tmp_path_factory.mktemp("api-index"))
        index = DocumentIndex.open(settings, embedder=embedder)
        report = index.add_paths([SAMPLE_DIR])
        assert report.ok and sorted(report.added) == [DOC_RETAKE, DOC_DEFEAT]
        _SHARED["qa"] = QAService(index=index, settings=settings)
    return _SHARED["qa"]


@dataclass
class LiveServer:
    url: str
    settings: Settings
    qa: QAService

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serve(qa: QAService, **overrides: Any) -> Iterator[LiveServer]:
    """Serve ``create_app(settings, qa=qa)`` with uvicorn in a background thread until the block ends.

    ``overrides`` are settings (api_keys, max_upload_bytes ...) on top of those of ``qa``'s index.
    """
    settings = make_settings(qa.settings.data_dir, **overrides)
    server, thread, port = _start(settings, qa)
    try:
        yield LiveServer(url=f"http://127.0.0.1:{port}", settings=settings, qa=qa)
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _start(settings: Settings, qa: QAService, attempts: int = 5) -> tuple[uvicorn.Server, threading.Thread, int]:
    # free_port() only finds a port that was free a moment ago; another process on this machine can
    # take it before uvicorn binds. Connecting would then reach that process, so wait for uvicorn's
    # own word that it listens (``started``) and pick another port when its bind failed.
    for _ in range(attempts):
        port = free_port()
        config = uvicorn.Config(create_app(settings, qa=qa), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.started:
            wait_for_port(port, timeout=5)
            return server, thread, port
        server.should_exit = True
        thread.join(timeout=5)
    raise RuntimeError(f"uvicorn did not start after {attempts} attempts")


def cited_docs(answer: dict[str, Any]) -> set[str]:
    return {c["doc_id"] for c in answer["citations"]}


def keep_only_the_sample(client: httpx.Client) -> None:
    """Delete every document a test uploaded, leaving the shared index as other modules expect it."""
    for doc in client.get("/v1/documents").json()["documents"]:
        if doc["id"] not in (DOC_RETAKE, DOC_DEFEAT):
            client.delete(f"/v1/documents/{doc['id']}")
