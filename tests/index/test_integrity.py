"""What a crash, a re-add or a second process can do to the index, and how it is mended."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import numpy as np
from conftest import ROOT, make_settings

from index.embedding import Embedder
from index.integrity import check_index
from index.models import Document
from index.pipeline import DocumentIndex
from qa.retrieve import hybrid_search
from qa.types import Filters

CITEQA = str(Path(sys.executable).with_name("citeqa"))
FERRY = "The ferry to Gotland leaves at nine."


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITEQA_")}
    env.update({"CITEQA_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra})
    return env


def test_re_adding_a_document_replaces_its_metadata_whole(empty_index: DocumentIndex) -> None:
    old = Document(id="meta2", title="Ferry", text=FERRY, source="OldSource", url="https://old.example/",
                   published_at=date(2020, 1, 1))
    empty_index.add_documents([old])
    report = empty_index.add_documents([Document(id="meta2", title="Ferry", text=FERRY)])
    assert report.updated == ["meta2"]

    info, _ = empty_index.get_document("meta2")
    assert (info.source, info.url, info.published_at) == (None, None, None)
    chunk = empty_index.document_chunks("meta2")[1][0]
    assert (chunk.source, chunk.url, chunk.published_at) == (None, None, None)
    settings = empty_index.settings
    dated = Filters(date_from=date(2019, 12, 31), date_to=date(2020, 1, 2))
    assert hybrid_search(empty_index, "ferry to Gotland", settings=settings, filters=dated) == []
    # the same through a fresh process's view of Chroma
    reopened = DocumentIndex.open(settings, embedder=empty_index.embedder)
    assert reopened.get_document("meta2")[0].source is None
    assert hybrid_search(reopened, "ferry to Gotland", settings=settings, filters=dated) == []


KILL_BETWEEN_WRITES = textwrap.dedent(
    """
    import os, signal, sys
    from index.models import Document
    from index.pipeline import DocumentIndex
    from index.settings import get_settings

    class KilledWriter(DocumentIndex):
        def before_registry_write(self):
            os.kill(os.getpid(), signal.SIGKILL)  # chunks written, registry record not yet

    index = KilledWriter.open(get_settings())
    docs = [Document(id=f"doc{i}", title=f"Report {i}", text=f"Crane number {i} was repaired at the Velmar "
            f"shipyard. The repair of crane {i} took {i + 2} days.") for i in range(5)]
    index.add_documents(docs)
    """
)


def test_a_writer_killed_between_chunk_and_registry_writes_leaves_no_orphans(
    tmp_path: Path, embedder: Embedder
) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir)
    DocumentIndex.open(settings, embedder=embedder).add_documents(
        [Document(id="keep", title="Keep", text="The Velmar shipyard has three cranes.")]
    )
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_WRITES], env=_env(data_dir), timeout=300,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -9, killed.stderr

    check = subprocess.run([CITEQA, "index", "check", "--json"], env=_env(data_dir), timeout=300,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 1, check.stderr
    report = json.loads(check.stdout)
    assert report["documents"] == 1 and len(report["orphan_chunks"]) == 5 and not report["ok"]

    # before any repair: readers neither list nor cite the orphans, and they take no dense-search slot
    reader = DocumentIndex.open(settings, embedder=embedder, recover=False)
    assert [d.id for d in reader.list_documents()] == ["keep"]
    vector = embedder.embed_queries(["crane repair at the shipyard"])[0]
    assert [cid.split("#")[0] for cid, _ in reader.dense_search(vector, k=3)] == ["keep"]
    assert reader.stats().lexical_chunks == 1

    repaired = subprocess.run([CITEQA, "index", "check", "--repair"], env=_env(data_dir), timeout=300,
                              capture_output=True, text=True, check=False)
    assert repaired.returncode == 0, repaired.stderr
    assert "5 orphan chunks deleted" in repaired.stdout
    after = DocumentIndex.open(settings, embedder=embedder, recover=False)
    assert check_index(after).ok and after.stats().chunks == 1


def test_opening_the_index_removes_what_a_killed_writer_left(tmp_path: Path, embedder: Embedder) -> None:
    data_dir = tmp_path / "data"
    killed = subprocess.run([sys.executable, "-c", KILL_BETWEEN_WRITES], env=_env(data_dir), timeout=300,
                            capture_output=True, text=True, check=False)
    assert killed.returncode == -9, killed.stderr
    index = DocumentIndex.open(make_settings(data_dir), embedder=embedder)
    stats = index.stats()
    assert (stats.documents, stats.chunks, stats.lexical_chunks) == (0, 0, 0)
    # and the interrupted documents can be added again normally
    report = index.add_documents([Document(id="doc1", title="Report 1", text="Crane number 1 was repaired.")])
    assert report.added == ["doc1"] and check_index(index).ok


OPEN_AT_ONCE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from index.embedding import Embedder
    from index.pipeline import DocumentIndex
    from index.settings import get_settings
    embedder = Embedder(load=False)  # verified before the start line, so the processes meet at Chroma
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.002)
    DocumentIndex.open(get_settings(), embedder=embedder)
    print("opened")
    """
)


def test_two_processes_creating_a_new_data_dir_at_once_both_succeed(tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(go)], env=_env(tmp_path / "data"),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    time.sleep(8)  # imports done, every process waiting for the go
    go.touch()
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-500:] for _, err in results]


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from index.locking import dir_lock
    dir_lock(Path(sys.argv[1]), "write.lock").acquire(timeout=5, purpose="citeqa serve (test)")
    print("locked", flush=True)
    time.sleep(60)
    """
)


def test_a_second_writer_waits_then_fails_naming_the_holder(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(data_dir)], env=_env(data_dir),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        note = tmp_path / "note.txt"
        note.write_text("The Velmar ferry runs twice a day.\n")
        done = subprocess.run([CITEQA, "index", "add", str(note)], env=_env(data_dir, CITEQA_LOCK_TIMEOUT="1"),
                              timeout=300, capture_output=True, text=True, check=False)
        assert done.returncode == 1
        assert "in use by another citeqa process (pid" in done.stderr and "citeqa serve (test)" in done.stderr
        assert "Traceback" not in done.stderr
    finally:
        holder.kill()
        holder.wait()


def test_index_vectors_unaffected_by_none_metadata(empty_index: DocumentIndex) -> None:
    empty_index.add_documents([Document(id="plain", title="Plain", text=FERRY)])
    chunk = empty_index.document_chunks("plain")[1][0]
    assert chunk.source is None and np.isfinite(chunk.sentence_vectors).all()
