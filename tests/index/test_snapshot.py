"""The local snapshot of the chunk table and BM25: a cache that a large index opens from, never the truth.

Every test compares an index opened from a snapshot with one opened from Chroma alone.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, make_settings

from index.embedding import Embedder
from index.models import Document
from index.pipeline import DocumentIndex
from index.settings import Settings
from index.snapshot import load_snapshot, save_snapshot, snapshot_path

QUERIES = ("Boukamal propaganda hideouts", "Abu Kamal Rawa", "mortar shell", "Al-Bagdadi killed")


def view(index: DocumentIndex) -> dict[str, tuple[object, ...]]:
    """Everything the answerer reads from the chunk table, by chunk id."""
    return {
        cid: (c.doc_id, c.text, c.start, c.end, c.title, c.source, c.published_at, c.sentences,
              c.sentence_vectors.tobytes())
        for cid in index.chunk_ids()
        if (c := index.chunk(cid)) is not None
    }


def searches(index: DocumentIndex) -> list[list[tuple[str, float]]]:
    return [sorted((h.chunk_id, round(h.score, 5)) for h in index.lexical_search(q, k=50)) for q in QUERIES]


def from_chroma_only(settings: Settings, embedder: Embedder) -> DocumentIndex:
    return DocumentIndex.open(settings.model_copy(update={"snapshot_min_chunks": 0}), embedder=embedder)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    """An index that writes a snapshot whenever opening it read anything from Chroma."""
    return make_settings(tmp_path / "idx", snapshot_min_chunks=1)


def test_reopening_from_the_snapshot_reads_nothing_from_chroma_and_matches_a_full_load(
    settings: Settings, embedder: Embedder
) -> None:
    first = DocumentIndex.open(settings, embedder=embedder)
    assert first.add_paths([SAMPLE_DIR]).ok
    assert not snapshot_path(settings).exists()  # a write does not write the snapshot: opening does

    second = DocumentIndex.open(settings, embedder=embedder)
    assert second._chunks_read == 0 and snapshot_path(settings).is_file()
    third = DocumentIndex.open(settings, embedder=embedder)
    assert third._chunks_read == 0

    full = from_chroma_only(settings, embedder)
    assert view(third) == view(full) and len(view(full)) == full.store.count_chunks() > 0
    assert searches(third) == searches(full)
    assert third.lexical.term_count == full.lexical.term_count
    assert third.sources() == full.sources()
    assert third.document_version(DOC_DEFEAT) == full.document_version(DOC_DEFEAT)
    assert third.add_paths([SAMPLE_DIR]).unchanged == sorted([DOC_DEFEAT, DOC_RETAKE])


def test_changes_made_after_the_snapshot_are_read_from_chroma(
    settings: Settings, embedder: Embedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(SAMPLE_DIR, corpus)
    DocumentIndex.open(settings, embedder=embedder).add_paths([corpus])
    DocumentIndex.open(settings, embedder=embedder)  # writes the snapshot
    # another process (no snapshot of its own) edits one document, deletes one, adds one
    writer = from_chroma_only(settings, embedder)
    path = corpus / f"{DOC_DEFEAT}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("Boukamal", "Boukamal (Abu Kamal)", 1), encoding="utf-8")
    assert writer.add_paths([corpus]).updated == [DOC_DEFEAT]
    writer.delete(DOC_RETAKE)
    writer.add_documents([Document(id="note", title="Note", text="A short note about Abu Kamal and Rawa.")])

    reopened = DocumentIndex.open(settings.model_copy(update={"snapshot_min_chunks": 1000}), embedder=embedder)

    expected = len(writer.document_chunks(DOC_DEFEAT)[1]) + len(writer.document_chunks("note")[1])
    assert reopened._chunks_read == expected  # only the edited and the new document came from Chroma
    assert view(reopened) == view(writer)
    assert set(reopened.store.all_chunk_ids()) == reopened.lexical.ids() == reopened.chunk_ids()
    assert searches(reopened) == searches(writer)
    assert not any(h.chunk_id.startswith(DOC_RETAKE) for h in reopened.lexical_search("Abu Kamal", k=50))


def test_a_damaged_or_foreign_snapshot_is_ignored_and_replaced(
    settings: Settings, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    DocumentIndex.open(settings, embedder=embedder).add_paths([SAMPLE_DIR])
    DocumentIndex.open(settings, embedder=embedder)
    path = snapshot_path(settings)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated, as by a full disk

    with caplog.at_level(logging.WARNING, logger="index.snapshot"):
        reopened = DocumentIndex.open(settings, embedder=embedder)
    assert "ignoring unreadable index snapshot" in caplog.text
    assert reopened._chunks_read == 0  # read everything from Chroma, then wrote a new snapshot
    assert load_snapshot(path, settings=settings, identity=embedder.identity, dim=embedder.dim) is not None
    assert view(reopened) == view(from_chroma_only(settings, embedder))

    # a snapshot made with another embedding model is not used, whatever it holds
    found = load_snapshot(path, settings=settings, identity=embedder.identity, dim=embedder.dim)
    assert found is not None
    save_snapshot(path, found, settings=settings, identity="another-model", dim=embedder.dim)
    assert load_snapshot(path, settings=settings, identity=embedder.identity, dim=embedder.dim) is None
    other = DocumentIndex.open(settings.model_copy(update={"snapshot_min_chunks": 1000}), embedder=embedder)
    assert other._chunks_read == len(view(other)) > 0


def test_an_emptied_collection_does_not_come_back_from_its_snapshot(settings: Settings, embedder: Embedder) -> None:
    DocumentIndex.open(settings, embedder=embedder).add_paths([SAMPLE_DIR])
    DocumentIndex.open(settings, embedder=embedder)
    writer = from_chroma_only(settings, embedder)
    for doc in writer.list_documents():
        writer.delete(doc.id)

    reopened = DocumentIndex.open(settings, embedder=embedder)
    assert reopened.chunk_ids() == set() and len(reopened.lexical) == 0
    assert not snapshot_path(settings).exists()


def test_snapshots_are_per_collection(tmp_path: Path) -> None:
    one = make_settings(tmp_path / "idx", collection="one")
    two = make_settings(tmp_path / "idx", collection="two")
    served = make_settings(tmp_path / "idx", collection="one", chroma_url="http://127.0.0.1:8001")
    assert len({snapshot_path(one), snapshot_path(two), snapshot_path(served)}) == 3
    assert snapshot_path(one).parent == tmp_path / "idx" / "snapshots"
