"""eval/load_api.py against a live server: a short run completes without errors and reports its figures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from live_app import LiveServer, sample_qa, serve

from eval.load_api import main, percentile
from index.embedding import Embedder


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


def test_a_short_load_run_reports_throughput_latency_and_no_errors(
    live: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["--url", live.url, "--concurrency", "2", "--duration", "1", "--warmup", "0", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["requests"] > 0 and report["errors"] == 0
    assert report["requests_per_s"] > 0
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p95"] <= report["latency_ms"]["max"]


def test_errors_are_counted_and_fail_the_run(live: LiveServer, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    questions = tmp_path / "q.txt"
    questions.write_text("Who was killed by a mortar shell?\n" + "x" * 5000 + "\n")
    status = main(["--url", live.url, "-c", "1", "-d", "0.5", "--warmup", "0", "--questions", str(questions), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["errors_by_kind"].get("HTTP 400", 0) >= 1


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (50.0, 95.0, 100.0)
    assert percentile([], 50) == 0.0
