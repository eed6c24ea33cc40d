"""Shared fixtures: the real bundled model, real Chroma (embedded and a `chroma run` server)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eval.processes import stop_process
from index.embedding import Embedder
from index.pipeline import DocumentIndex
from index.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "sample-news"
PLANTED_DIR = Path(__file__).resolve().parent / "data" / "planted"  # documents with planted instructions
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = ROOT.parent / "shared"
SCIFACT_DIR = SHARED / "data" / "scifact"
DOC_RETAKE = "000_a26167b24af8d410"  # ISIS retakes Abu Kamal (undated)
DOC_DEFEAT = "004_f819b13ffc05e965"  # ISIS defeated in Boukamal (Global News, 2017-11-19)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled MiniLM model, loaded once for the whole run."""
    return Embedder()


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    return get_settings(data_dir=data_dir, **overrides)


@pytest.fixture()
def empty_index(tmp_path: Path, embedder: Embedder) -> DocumentIndex:
    """A fresh embedded-Chroma index in a temporary directory."""
    return DocumentIndex.open(make_settings(tmp_path / "idx"), embedder=embedder)


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> DocumentIndex:
    """The sample corpus indexed once (read-only for tests: do not add or delete here)."""
    index = DocumentIndex.open(make_settings(tmp_path_factory.mktemp("sample")), embedder=embedder)
    report = index.add_paths([SAMPLE_DIR])
    assert report.ok and sorted(report.added) == [DOC_RETAKE, DOC_DEFEAT]
    return index


@pytest.fixture(scope="session")
def planted_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> DocumentIndex:
    """Three short news items, each with an instruction planted in it (read-only for tests)."""
    index = DocumentIndex.open(make_settings(tmp_path_factory.mktemp("planted")), embedder=embedder)
    assert index.add_paths([PLANTED_DIR]).ok
    return index


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A real `chroma run` server on 127.0.0.1 on a free port, for the whole session."""
    exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen(
        [exe, "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(path / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        wait_for_port(port, proc=proc)
        yield "127.0.0.1", port
    finally:
        stop_process(proc, timeout=10)
        log.close()


def scifact_available() -> bool:
    return (SCIFACT_DIR / "corpus.jsonl").is_file()


@pytest.fixture(scope="session")
def sample_qa(sample_index: DocumentIndex):
    """The extractive QA service over the sample corpus (read-only)."""
    from qa.service import QAService

    return QAService(index=sample_index, settings=sample_index.settings)
