"""The OpenAPI schema is the contract: schemathesis fuzzes a live app with every check, stateful too.

Two runs against one real server (real model, real Chroma, the sample corpus in an index of its own,
since the stateful phase adds and deletes documents): a fixed seed, so a failure reproduces, and a
fresh seed, so each CI run also explores new inputs (its seed is printed for ``st replay``). The
only allowances are in ``tests/api/contract/``: reversed date ranges are left out of positive
cases (JSON Schema cannot compare two fields), and an upload of random bytes may be a 400/415.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLE_DIR, make_settings
from live_app import LiveServer, serve

from index.embedding import Embedder
from index.pipeline import DocumentIndex
from qa.service import QAService

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
CONFIG = Path(__file__).resolve().parent / "contract"


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("contract-index"))
    index = DocumentIndex.open(settings, embedder=embedder)
    assert index.add_paths([SAMPLE_DIR]).ok
    with serve(QAService(index=index, settings=settings)) as server:
        yield server


def run_schemathesis(live: LiveServer, tmp_path: Path, *, seed: int, max_examples: int) -> dict[str, object]:
    report = tmp_path / f"report-{seed}.json"
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.contract.hooks", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(CONFIG / "schemathesis.toml"), "run", f"{live.url}/openapi.json",
         "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful", "--seed", str(seed),
         "--max-examples", str(max_examples), "--workers", "1", "--continue-on-failure",
         "--generation-database", "none", "--report-json-path", str(report)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,  # caches stay out of the repo
    )
    assert done.returncode == 0, f"seed {seed}:\n{done.stdout[-12000:]}\n{done.stderr[-2000:]}"
    return json.loads(report.read_text())  # type: ignore[no-any-return]


def test_the_api_keeps_its_openapi_contract(live: LiveServer, tmp_path: Path) -> None:
    fixed = run_schemathesis(live, tmp_path, seed=20261201, max_examples=45)
    fresh_seed = random.randrange(2**31)
    print(f"schemathesis fresh seed: {fresh_seed}")
    fresh = run_schemathesis(live, tmp_path, seed=fresh_seed, max_examples=10)
    for report in (fixed, fresh):
        assert report["complete"] and report["exit_code"] == 0
        assert report["test_cases"]["with_failures"] == 0  # type: ignore[index]
        assert report["operations"]["tested"] == report["operations"]["total"]  # type: ignore[index]
        assert set(report["phases"]) >= {"examples", "coverage", "fuzzing", "stateful"}  # type: ignore[arg-type]
    counts = [r["test_cases"]["generated"] for r in (fixed, fresh)]  # type: ignore[index]
    print(f"schemathesis generated {counts} test cases (fixed seed, fresh seed)")
    assert sum(counts) >= 1000, counts
