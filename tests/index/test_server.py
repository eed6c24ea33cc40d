"""The same index guarantees against a real `chroma run` server, shared by several processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, make_settings

from index.embedding import Embedder
from index.models import Document
from index.pipeline import DocumentIndex
from index.settings import Settings

pytestmark = pytest.mark.server

CITEQA = str(Path(sys.executable).with_name("citeqa"))
EDIT_FROM = "Pro-government forces were combing the town for booby traps, Syria's SANA news agency reported."
EDIT_TO = "Sappers cleared the market of tripwires, the state news agency said."


def assert_consistent(index: DocumentIndex) -> set[str]:
    """Chroma, BM25 and the registry agree; returns the chunk ids."""
    stored = set(index.store.all_chunk_ids())
    assert stored == index.lexical.ids() == index.chunk_ids()
    assert sum(d.chunk_count for d in index.list_documents()) == len(stored)
    return stored


def doc_chunk_ids(index: DocumentIndex, doc_id: str) -> set[str]:
    return index.store.chunk_ids_of([doc_id])[doc_id]


def lexical_docs(index: DocumentIndex, query: str) -> set[str]:
    return {index.chunk(h.chunk_id).doc_id for h in index.lexical_search(query, k=50)}  # type: ignore[union-attr]


@pytest.fixture()
def server_settings(chroma_server: tuple[str, int], tmp_path: Path) -> Settings:
    """Settings for a collection of its own on the shared server (the data dir stays empty)."""
    host, port = chroma_server
    return make_settings(
        tmp_path / "unused", chroma_host=host, chroma_port=port, collection=f"t{uuid.uuid4().hex[:12]}"
    )


@pytest.fixture()
def server_index(server_settings: Settings, embedder: Embedder) -> DocumentIndex:
    return DocumentIndex.open(server_settings, embedder=embedder)


def test_adding_twice_editing_and_deleting_on_a_server(server_index: DocumentIndex, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_DIR, corpus)
    first = server_index.add_paths([corpus])
    assert first.ok and sorted(first.added) == [DOC_RETAKE, DOC_DEFEAT]
    ids = assert_consistent(server_index)
    assert server_index.stats().store.startswith("chroma server 127.0.0.1:")
    assert not (tmp_path / "unused").exists(), "server mode writes nothing to the data dir"

    again = server_index.add_paths([corpus])
    assert sorted(again.unchanged) == [DOC_RETAKE, DOC_DEFEAT] and again.chunks_embedded == 0
    assert assert_consistent(server_index) == ids

    retake = doc_chunk_ids(server_index, DOC_RETAKE)
    defeat = doc_chunk_ids(server_index, DOC_DEFEAT)
    path = corpus / f"{DOC_DEFEAT}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(EDIT_FROM, EDIT_TO), encoding="utf-8")
    edited = server_index.add_paths([corpus])
    assert edited.updated == [DOC_DEFEAT] and edited.unchanged == [DOC_RETAKE]
    new_defeat = doc_chunk_ids(server_index, DOC_DEFEAT)
    assert doc_chunk_ids(server_index, DOC_RETAKE) == retake
    assert edited.chunks_embedded == len(new_defeat - defeat) < len(new_defeat)
    assert edited.chunks_removed == len(defeat - new_defeat) > 0
    assert assert_consistent(server_index) == retake | new_defeat
    assert lexical_docs(server_index, "sappers tripwires") == {DOC_DEFEAT}

    assert server_index.delete(DOC_DEFEAT) == len(new_defeat)
    assert assert_consistent(server_index) == retake
    assert lexical_docs(server_index, "sappers tripwires") == set()


def test_a_reopened_server_index_rebuilds_the_same_bm25(server_index: DocumentIndex, embedder: Embedder) -> None:
    server_index.add_paths([SAMPLE_DIR])
    ids = assert_consistent(server_index)
    reopened = DocumentIndex.open(server_index.settings, embedder=embedder)
    assert reopened.lexical.ids() == ids
    assert lexical_docs(reopened, "Khayrallah Samadi") == {DOC_DEFEAT}


def test_two_index_objects_follow_each_others_writes(server_settings: Settings, embedder: Embedder) -> None:
    a = DocumentIndex.open(server_settings, embedder=embedder)
    b = DocumentIndex.open(server_settings, embedder=embedder)
    a.add_paths([SAMPLE_DIR])
    assert b.sync() is True
    assert b.lexical.ids() == assert_consistent(a)
    b.delete(DOC_RETAKE)
    assert a.sync() is True
    assert a.lexical.ids() == assert_consistent(b) == doc_chunk_ids(a, DOC_DEFEAT)
    assert a.add_documents([Document(id="x", title="X", text="Rawa fell to Iraqi forces.")]).added == ["x"]
    b.sync()
    assert lexical_docs(b, "Rawa") == {"x"}
    assert_consistent(b)


def test_two_processes_see_each_others_additions(
    server_settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    index = DocumentIndex.open(server_settings, embedder=embedder)
    index.add_paths([SAMPLE_DIR / f"{DOC_RETAKE}.txt"])  # this process adds one article
    note = tmp_path / "harbour.md"
    note.write_text("# Harbour\n\nThe Zeebrugge harbour reopened after the storm, the port authority said.\n")
    env = {
        **os.environ,
        "CITEQA_CHROMA_HOST": str(server_settings.chroma_host),
        "CITEQA_CHROMA_PORT": str(server_settings.chroma_port),
        "CITEQA_COLLECTION": server_settings.collection,
        "CITEQA_DATA_DIR": str(tmp_path / "cli-data"),
    }

    # ... another process adds a new file and the article this process already added
    done = subprocess.run(
        [CITEQA, "index", "add", "--json", str(note), str(SAMPLE_DIR / f"{DOC_RETAKE}.txt")],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["added"] == ["harbour"]
    assert report["unchanged"] == [DOC_RETAKE], "the CLI process sees what this process added"
    assert lexical_docs(index, "Zeebrugge") == set(), "not yet: this process has not synced"
    assert index.sync() is True
    assert [d.id for d in index.list_documents()] == [DOC_RETAKE, "harbour"]
    assert lexical_docs(index, "Zeebrugge harbour") == {"harbour"}
    assert_consistent(index)


def test_an_unreachable_chroma_server_is_a_store_error(tmp_path, embedder):
    from index.errors import StoreError
    from index.pipeline import DocumentIndex
    from tests.conftest import free_port, make_settings

    settings = make_settings(tmp_path / "idx", chroma_host="127.0.0.1", chroma_port=free_port())
    with pytest.raises(StoreError, match="Chroma"):
        DocumentIndex.open(settings, embedder=embedder)
