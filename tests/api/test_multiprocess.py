"""Several `citeqa serve` processes on one `chroma run` server answer consistently, right after a change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import DOC_DEFEAT, SAMPLE_DIR, free_port, wait_for_port

from eval.processes import stop_process

pytestmark = pytest.mark.server

CITEQA = str(Path(sys.executable).with_name("citeqa"))
NOTE = {
    "id": "harbour-note",
    "title": "Velmar harbour dredging",
    "text": "Dredging of Velmar harbour finished in June 2022; the channel is now 14 metres deep, the port said.",
    "source": "Velmar Port Authority",
}
QUESTION = "How deep is the Velmar harbour channel?"


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def launch_api(load: list[str], log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    return start([CITEQA, "serve", "--port", str(port), *load], log, env), port


def listening(proc: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    """True once uvicorn says it listens on ``port``; False when the process exits first.

    free_port() only finds a port that was free a moment ago; another process on this machine can take
    it while the model loads, and connecting would then reach that process. Uvicorn writes its
    "running on" line only after its own bind succeeded.
    """
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline:
        if f"running on http://127.0.0.1:{port}" in log.read_text(errors="replace"):
            return True
        time.sleep(0.2)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, timeout=15)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dedicated `chroma run` (this module stops it at the end) and two API processes on it."""
    root = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    chroma_port = free_port()
    chroma_exe = shutil.which("chroma") or str(Path(sys.executable).with_name("chroma"))
    chroma = start([chroma_exe, "run", "--host", "127.0.0.1", "--port", str(chroma_port), "--path", str(root / "db")],
                   root / "chroma.log", env)
    procs = [chroma]
    try:
        wait_for_port(chroma_port, proc=chroma)
        api_env = {**env, "CITEQA_CHROMA_URL": f"http://127.0.0.1:{chroma_port}", "CITEQA_DATA_DIR": str(root / "d")}
        specs = [(["--load", str(SAMPLE_DIR)], root / "api0.log"), ([], root / "api1.log")]
        launched = [launch_api(load, log, api_env) for load, log in specs]  # both load the model at once
        procs += [proc for proc, _ in launched]  # everything started is stopped at the end (stop is idempotent)
        ports = []
        for (load, log), (proc, port) in zip(specs, launched, strict=True):
            for _ in range(3):
                if listening(proc, port, log):
                    break
                stop(proc)
                proc, port = launch_api(load, log, api_env)
                procs.append(proc)
            else:
                raise RuntimeError(f"citeqa serve did not start; see {log}")
            ports.append(port)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=60) for p in ports]
        for client in clients:
            client.logs = root  # type: ignore[attr-defined]
        yield {"a": clients[0], "b": clients[1], "chroma": chroma, "logs": root}
        for client in clients:
            client.close()
    finally:
        for proc in reversed(procs):
            stop(proc)


def ask(client: httpx.Client, question: str) -> dict[str, Any]:
    response = client.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, f"{response.status_code} {response.text}\n{server_logs(client)}"
    return response.json()


def server_logs(client: httpx.Client) -> str:
    """The end of every server log, to explain a failure that happened in another process."""
    root: Path = client.logs  # type: ignore[attr-defined]
    tails = [f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
             for log in sorted(root.glob("*.log"))]
    return "\n".join(tails)


def cited(answer: dict[str, Any]) -> set[str]:
    return {c["doc_id"] for c in answer["citations"]}


def test_a_process_serves_what_another_indexed(cluster: dict[str, Any]) -> None:
    assert cluster["b"].get("/readyz").json()["status"] == "ready"
    assert DOC_DEFEAT in cited(ask(cluster["b"], "Who was killed by a mortar shell?"))


def test_an_add_through_one_process_is_seen_by_the_other_at_once(cluster: dict[str, Any]) -> None:
    a, b = cluster["a"], cluster["b"]
    assert a.post("/v1/documents", json=NOTE).status_code == 201
    answer = ask(b, QUESTION)
    assert cited(answer) == {"harbour-note"} and "14 metres" in answer["text"]
    assert "harbour-note" in [d["id"] for d in b.get("/v1/documents").json()["documents"]]
    passages = b.get("/v1/search", params={"q": "Velmar harbour dredging"}).json()["passages"]
    assert passages[0]["doc_id"] == "harbour-note"
    body = {"model": "extractive", "messages": [{"role": "user", "content": QUESTION}]}
    chat = b.post("/v1/chat/completions", json=body)
    assert "harbour-note" in {c["doc_id"] for c in chat.json()["citations"]}


def test_an_update_and_a_delete_through_one_process_show_in_the_other(cluster: dict[str, Any]) -> None:
    a, b = cluster["a"], cluster["b"]
    changed = {**NOTE, "text": NOTE["text"].replace("14 metres", "16 metres")}
    response = b.post("/v1/documents", json=changed)
    assert response.status_code == 200 and response.json()["updated"] == ["harbour-note"]
    answer = ask(a, QUESTION)
    assert "16 metres" in answer["text"] and "14 metres" not in answer["text"]

    assert b.delete("/v1/documents/harbour-note").status_code == 200
    assert "harbour-note" not in cited(ask(a, QUESTION))
    assert a.get("/v1/documents/harbour-note").status_code == 404


def test_readiness_fails_when_chroma_goes_away_and_nothing_answers_500(cluster: dict[str, Any]) -> None:
    stop(cluster["chroma"])
    time.sleep(0.5)
    a = cluster["a"]
    ready = a.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["chroma_reachable"] is False and ready.json()["detail"]
    assert a.get("/healthz").status_code == 200
    for response in (ask_raw(a), a.get("/v1/documents"), a.post("/v1/documents", json=NOTE)):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "store_unavailable"


def ask_raw(client: httpx.Client) -> httpx.Response:
    return client.post("/v1/ask", json={"question": QUESTION})
