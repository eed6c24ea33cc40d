"""The `citeqa index` commands, run as a user runs them: a subprocess with CITEQA_* in the environment.

Every run loads the model, so the runs are few: one shared index for the read-only commands, and one
fresh index per test that changes things.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, make_settings

from index.embedding import Embedder
from index.pipeline import DocumentIndex

CITEQA = str(Path(sys.executable).with_name("citeqa"))


@dataclass
class Cli:
    """Runs `citeqa` against one data directory."""

    data_dir: Path

    def __call__(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
        env["CITEQA_DATA_DIR"] = str(self.data_dir)
        return subprocess.run(
            [CITEQA, *map(str, args)], env=env, capture_output=True, text=True, timeout=300, check=False
        )


@pytest.fixture(scope="module")
def sample_cli(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, subprocess.CompletedProcess[str]]:
    """An index with the sample corpus added through the CLI, and that first run's result."""
    cli = Cli(tmp_path_factory.mktemp("cli") / "data")
    return cli, cli("index", "add", SAMPLE_DIR)


def test_index_add_adds_the_sample_corpus(sample_cli: tuple[Cli, subprocess.CompletedProcess[str]]) -> None:
    _, first = sample_cli
    assert first.returncode == 0, first.stderr
    assert f"added      {DOC_RETAKE}" in first.stdout
    assert f"added      {DOC_DEFEAT}" in first.stdout
    assert "2 added, 0 updated, 0 unchanged, 0 failed" in first.stdout
    assert "FAILED" not in first.stderr


def test_index_add_again_says_unchanged(sample_cli: tuple[Cli, subprocess.CompletedProcess[str]]) -> None:
    cli, first = sample_cli
    again = cli("index", "add", SAMPLE_DIR)
    assert again.returncode == 0, again.stderr
    assert f"unchanged  {DOC_RETAKE} (already indexed, nothing to do)" in again.stdout
    assert f"unchanged  {DOC_DEFEAT}" in again.stdout
    assert "0 added, 0 updated, 2 unchanged, 0 failed; 0 chunks embedded" in again.stdout


def test_index_list_json(sample_cli: tuple[Cli, subprocess.CompletedProcess[str]]) -> None:
    cli, _ = sample_cli
    listed = cli("index", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    docs = {d["id"]: d for d in json.loads(listed.stdout)}
    assert set(docs) == {DOC_RETAKE, DOC_DEFEAT}
    defeat = docs[DOC_DEFEAT]
    assert defeat["title"] == "Syria: ISIS defeated in last major stronghold"
    assert defeat["source"] == "Global News"
    assert defeat["published_at"] == "2017-11-19"
    assert defeat["url"].startswith("https://globalnews.ca/")
    assert defeat["chunk_count"] > 0 and docs[DOC_RETAKE]["chunk_count"] > 0
    assert docs[DOC_RETAKE]["published_at"] is None


def test_index_stats_json(sample_cli: tuple[Cli, subprocess.CompletedProcess[str]]) -> None:
    cli, _ = sample_cli
    done = cli("index", "stats", "--json")
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    assert stats["documents"] == 2
    assert stats["chunks"] == stats["lexical_chunks"] > 0
    assert stats["store"] == "chroma embedded"
    assert stats["data_dir"] == str(cli.data_dir)
    assert stats["disk_bytes"] > 0
    assert stats["embedding_model"].startswith("bundled:all-MiniLM-L6-v2@")


def test_a_bad_file_fails_the_command_but_the_good_ones_are_indexed(tmp_path: Path, embedder: Embedder) -> None:
    cli = Cli(tmp_path / "data")
    good = tmp_path / "harbour.md"
    good.write_text("# Harbour\n\nThe Zeebrugge harbour reopened after the storm.\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "dump.txt"
    binary.write_bytes(b"\x00\x01\x02\x03" * 64)

    done = cli("index", "add", good, empty, binary, SAMPLE_DIR / f"{DOC_DEFEAT}.txt")

    assert done.returncode == 1
    assert f"FAILED     {empty}: empty" in done.stderr
    assert f"FAILED     {binary}: binary file" in done.stderr
    assert "2 added, 0 updated, 0 unchanged, 2 failed" in done.stdout
    index = DocumentIndex.open(make_settings(cli.data_dir), embedder=embedder)
    assert [d.id for d in index.list_documents()] == [DOC_DEFEAT, "harbour"]
    assert set(index.store.all_chunk_ids()) == index.lexical.ids()


def test_index_rm_deletes_and_an_unknown_id_is_an_error(tmp_path: Path, embedder: Embedder) -> None:
    cli = Cli(tmp_path / "data")
    DocumentIndex.open(make_settings(cli.data_dir), embedder=embedder).add_paths([SAMPLE_DIR])  # saves a CLI run

    removed = cli("index", "rm", DOC_RETAKE, "no-such-doc")

    assert removed.returncode == 1
    assert removed.stdout.startswith(f"deleted {DOC_RETAKE} (")
    assert "citeqa: no document with id 'no-such-doc'" in removed.stderr
    assert "Traceback" not in removed.stderr
    listed = cli("index", "list", "--json")
    assert [d["id"] for d in json.loads(listed.stdout)] == [DOC_DEFEAT]


def test_a_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "CITEQA_DATA_DIR": str(tmp_path), "CITEQA_CHUNK_OVERLAP": "5000"}
    done = subprocess.run(
        [CITEQA, "index", "list"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "chunk_overlap (5000) must be smaller than chunk_size (800)" in done.stderr
    assert "Traceback" not in done.stderr
