"""The document index on embedded Chroma: idempotent adds, exact replacement, deletes, bad input.

After every operation Chroma and the BM25 index must hold exactly the same chunk ids.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, make_settings

from index.chunking import chunk_document
from index.embedding import Embedder
from index.errors import DocumentNotFound
from index.loaders import load_file
from index.models import Document
from index.pipeline import DocumentIndex

EDIT_FROM = "Despite its recent defeats, the extremist group's media apparatus has remained active"
EDIT_TO = "Despite the loss of Boukamal, the group's propaganda channels kept publishing from hideouts"


def assert_consistent(index: DocumentIndex) -> set[str]:
    """Chroma, BM25 and the registry agree; returns the chunk ids."""
    stored = set(index.store.all_chunk_ids())
    assert stored == index.lexical.ids() == index.chunk_ids()
    listed = {cid for d in index.list_documents() for cid in index.store.chunk_ids_of([d.id])[d.id]}
    assert listed == stored
    assert sum(d.chunk_count for d in index.list_documents()) == len(stored)
    return stored


def doc_chunk_ids(index: DocumentIndex, doc_id: str) -> set[str]:
    return index.store.chunk_ids_of([doc_id])[doc_id]


def lexical_docs(index: DocumentIndex, query: str) -> set[str]:
    hits = index.lexical_search(query, k=50)
    return {index.chunk(h.chunk_id).doc_id for h in hits}  # type: ignore[union-attr]


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    """A private, editable copy of the sample corpus."""
    target = tmp_path / "corpus"
    shutil.copytree(SAMPLE_DIR, target)
    return target


def test_adding_the_sample_twice_changes_nothing(empty_index: DocumentIndex, corpus: Path) -> None:
    first = empty_index.add_paths([corpus])
    assert first.ok and sorted(first.added) == [DOC_RETAKE, DOC_DEFEAT]
    ids = assert_consistent(empty_index)
    counts = {d.id: d.chunk_count for d in empty_index.list_documents()}
    assert first.chunks_embedded == len(ids) == sum(counts.values())

    second = empty_index.add_paths([corpus])
    assert second.ok
    assert sorted(second.unchanged) == [DOC_RETAKE, DOC_DEFEAT]
    assert second.added == second.updated == []
    assert second.chunks_embedded == second.chunks_removed == 0
    assert assert_consistent(empty_index) == ids
    assert {d.id: d.chunk_count for d in empty_index.list_documents()} == counts


def test_editing_one_document_replaces_exactly_its_chunks(empty_index: DocumentIndex, corpus: Path) -> None:
    empty_index.add_paths([corpus])
    retake_before = doc_chunk_ids(empty_index, DOC_RETAKE)
    defeat_before = doc_chunk_ids(empty_index, DOC_DEFEAT)

    path = corpus / f"{DOC_DEFEAT}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(EDIT_FROM, EDIT_TO), encoding="utf-8")
    (edited,) = load_file(path)
    expected = {c.id for c in chunk_document(edited, chunk_size=800, overlap=150)}

    report = empty_index.add_paths([corpus])

    assert report.updated == [DOC_DEFEAT] and report.unchanged == [DOC_RETAKE]
    assert doc_chunk_ids(empty_index, DOC_RETAKE) == retake_before
    defeat_after = doc_chunk_ids(empty_index, DOC_DEFEAT)
    assert defeat_after == expected
    assert defeat_before & defeat_after, "chunks whose text did not change keep their ids"
    assert report.chunks_embedded == len(defeat_after - defeat_before), "unchanged chunks are not re-embedded"
    assert report.chunks_removed == len(defeat_before - defeat_after) > 0
    assert_consistent(empty_index)

    info, text = empty_index.get_document(DOC_DEFEAT)
    assert EDIT_TO in text and EDIT_FROM not in text
    assert info.chunk_count == len(expected)
    for cid in defeat_after:
        chunk = empty_index.chunk(cid)
        assert chunk is not None and text[chunk.start : chunk.end] == chunk.text
    assert DOC_DEFEAT in lexical_docs(empty_index, "propaganda hideouts")
    assert lexical_docs(empty_index, "extremist apparatus") == set()


def test_a_metadata_only_edit_updates_citations_without_re_embedding(
    empty_index: DocumentIndex, corpus: Path
) -> None:
    empty_index.add_paths([corpus])
    sidecar = corpus / f"{DOC_RETAKE}.meta.json"
    sidecar.write_text(sidecar.read_text().replace('"published_at": null', '"published_at": "2017-11-15"'))
    report = empty_index.add_paths([corpus])
    assert report.updated == [DOC_RETAKE] and report.chunks_embedded == 0 and report.chunks_removed == 0
    info, _ = empty_index.get_document(DOC_RETAKE)
    assert info.published_at == "2017-11-15"
    chunks = [empty_index.chunk(cid) for cid in doc_chunk_ids(empty_index, DOC_RETAKE)]
    assert {c.published_at for c in chunks if c is not None} == {"2017-11-15"}
    assert_consistent(empty_index)


def test_same_chunk_text_with_new_sentence_spans_gets_new_sentence_vectors(
    embedder: Embedder, tmp_path: Path
) -> None:
    """Hard-wrap detection looks at the whole text, so an edit elsewhere can re-split a chunk's sentences."""
    head = "Results were announced today\nby the committee in Geneva."
    wrapped = "\n\n".join([head] + ["the panel met in the morning and\nthen it adjourned for lunch and\nresumed."] * 3)
    plain = head + "\n\nThe panel adjourned after a long day of debate and votes on many things."
    index = DocumentIndex.open(make_settings(tmp_path / "idx", chunk_size=100, chunk_overlap=0), embedder=embedder)
    index.add_documents([Document(id="minutes", title="Minutes", text=wrapped)])

    index.add_documents([Document(id="minutes", title="Minutes", text=plain)])

    chunks = sorted((index.chunk(cid) for cid in doc_chunk_ids(index, "minutes")), key=lambda c: c.start)  # type: ignore[union-attr]
    assert chunks[0] is not None and chunks[0].text == head
    assert len(chunks[0].sentences) == 2
    for chunk in chunks:
        assert chunk is not None
        assert chunk.sentence_vectors.shape == (len(chunk.sentences), embedder.dim)
    assert_consistent(index)


def test_delete_removes_a_document_from_chroma_and_bm25(empty_index: DocumentIndex) -> None:
    empty_index.add_paths([SAMPLE_DIR])
    assert DOC_DEFEAT in lexical_docs(empty_index, "Khayrallah Samadi")
    gone = doc_chunk_ids(empty_index, DOC_DEFEAT)

    removed = empty_index.delete(DOC_DEFEAT)

    assert removed == len(gone) > 0
    remaining = assert_consistent(empty_index)
    assert remaining.isdisjoint(gone)
    assert [d.id for d in empty_index.list_documents()] == [DOC_RETAKE]
    assert lexical_docs(empty_index, "Khayrallah Samadi") == set()
    assert {cid for cid, _ in empty_index.dense_search(empty_index.embedder.embed_queries(["Boukamal"])[0], k=50)} <= (
        remaining
    )
    with pytest.raises(DocumentNotFound):
        empty_index.get_document(DOC_DEFEAT)
    with pytest.raises(DocumentNotFound, match="no document with id 'no-such-doc'"):
        empty_index.delete("no-such-doc")
    assert_consistent(empty_index)

    # deleted documents come back when added again
    assert empty_index.add_paths([SAMPLE_DIR]).added == [DOC_DEFEAT]
    assert doc_chunk_ids(empty_index, DOC_DEFEAT) == gone
    assert_consistent(empty_index)


def test_bad_files_are_reported_and_the_good_ones_indexed_without_losing_anything(
    empty_index: DocumentIndex, corpus: Path, tmp_path: Path
) -> None:
    empty_index.add_paths([corpus])
    before = assert_consistent(empty_index)

    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "floods.md").write_text("# Floods\n\nThe river Tarn flooded the valley of Millau in March.\n")
    (batch / "empty.txt").write_bytes(b"")
    (batch / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (batch / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<")
    # the indexed article's file is overwritten with garbage: the indexed version must survive
    (corpus / f"{DOC_DEFEAT}.txt").write_bytes(b"\x00\x01\x02garbage")

    report = empty_index.add_paths([batch, corpus])

    assert not report.ok
    assert sorted(Path(f.source).name for f in report.failed) == sorted(
        ["empty.txt", "image.txt", "broken.pdf", f"{DOC_DEFEAT}.txt"]
    )
    assert report.added == ["floods"] and report.unchanged == [DOC_RETAKE]
    after = assert_consistent(empty_index)
    assert before < after
    assert DOC_DEFEAT in {d.id for d in empty_index.list_documents()}
    assert lexical_docs(empty_index, "Millau flooded") == {"floods"}
    assert DOC_DEFEAT in lexical_docs(empty_index, "Khayrallah Samadi")


def test_reopening_the_index_restores_bm25_from_chroma(
    empty_index: DocumentIndex, corpus: Path, embedder: Embedder
) -> None:
    empty_index.add_paths([corpus])
    empty_index.delete(DOC_RETAKE)
    empty_index.add_documents([Document(id="note", title="Note", text="A short note about Abu Kamal and Rawa.")])
    ids = assert_consistent(empty_index)
    query = "Abu Kamal Rawa battle"
    hits = [(h.chunk_id, round(h.score, 4)) for h in empty_index.lexical_search(query, k=10)]

    reopened = DocumentIndex.open(empty_index.settings, embedder=embedder)

    assert reopened.lexical.ids() == ids == set(reopened.store.all_chunk_ids())
    assert [(h.chunk_id, round(h.score, 4)) for h in reopened.lexical_search(query, k=10)] == hits
    assert [d.id for d in reopened.list_documents()] == [DOC_DEFEAT, "note"]
    assert reopened.add_paths([corpus]).unchanged == [DOC_DEFEAT]


def test_a_second_index_object_notices_changes_on_sync(empty_index: DocumentIndex, embedder: Embedder) -> None:
    other = DocumentIndex.open(empty_index.settings, embedder=embedder)
    empty_index.add_paths([SAMPLE_DIR])
    assert other.lexical.ids() == set()
    assert other.sync() is True
    assert other.lexical.ids() == assert_consistent(empty_index)
    empty_index.delete(DOC_RETAKE)
    assert other.sync() is True
    assert other.lexical.ids() == assert_consistent(empty_index)
    assert other.sync() is False  # nothing changed since


def test_stats_count_documents_chunks_and_disk(empty_index: DocumentIndex) -> None:
    empty_index.add_paths([SAMPLE_DIR])
    stats = empty_index.stats()
    assert stats.documents == 2
    assert stats.chunks == stats.lexical_chunks == len(assert_consistent(empty_index))
    assert stats.store == "chroma embedded"
    assert stats.disk_bytes is not None and stats.disk_bytes > 0
    assert stats.embedding_model == empty_index.embedder.identity


def test_changing_the_chunk_settings_rechunks_on_re_add(tmp_path, embedder):
    from index.pipeline import DocumentIndex
    from tests.conftest import SAMPLE_DIR, make_settings

    first = DocumentIndex.open(make_settings(tmp_path / "idx"), embedder=embedder)
    assert first.add_paths([SAMPLE_DIR]).ok
    before = first.chunk_ids()
    smaller = DocumentIndex.open(make_settings(tmp_path / "idx", chunk_size=400, chunk_overlap=50), embedder=embedder)
    report = smaller.add_paths([SAMPLE_DIR])
    assert sorted(report.updated) == sorted(d.id for d in smaller.list_documents())
    assert report.unchanged == []
    after = smaller.chunk_ids()
    assert len(after) > len(before)
    assert set(smaller.store.all_chunk_ids()) == smaller.lexical.ids() == after
    assert all(len(smaller.chunk(c).text) <= 400 for c in after)


def test_after_adds_edits_and_deletes_memory_matches_a_fresh_open(
    empty_index: DocumentIndex, corpus: Path, embedder: Embedder
) -> None:
    """A writer reloads only what it wrote; what it then holds must be what opening the index loads."""
    empty_index.add_paths([corpus])
    path = corpus / f"{DOC_DEFEAT}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace(EDIT_FROM, EDIT_TO), encoding="utf-8")
    assert empty_index.add_paths([corpus]).updated == [DOC_DEFEAT]
    empty_index.add_documents([Document(id="note", title="Note", text="A short note about Abu Kamal and Rawa.")])
    empty_index.delete(DOC_RETAKE)

    reopened = DocumentIndex.open(empty_index.settings, embedder=embedder)

    def view(index: DocumentIndex) -> dict[str, tuple[object, ...]]:
        return {
            cid: (c.doc_id, c.text, c.start, c.end, c.sentences, c.sentence_vectors.tobytes())
            for cid in index.chunk_ids()
            if (c := index.chunk(cid)) is not None
        }

    assert view(empty_index) == view(reopened) and len(view(reopened)) == len(assert_consistent(reopened))
    for doc_id in (DOC_DEFEAT, DOC_RETAKE, "note"):
        assert empty_index.document_version(doc_id) == reopened.document_version(doc_id)
    for query in ("Boukamal propaganda hideouts", "Abu Kamal Rawa", "mortar shell"):
        # sorted: equal scores may come in another order (rows are numbered in load order)
        assert sorted((h.chunk_id, round(h.score, 5)) for h in empty_index.lexical_search(query, k=50)) == sorted(
            (h.chunk_id, round(h.score, 5)) for h in reopened.lexical_search(query, k=50)
        )
    assert empty_index.sources() == reopened.sources()


def test_chunk_search_is_cosine_and_wide_enough_in_new_and_old_collections(tmp_path: Path, embedder: Embedder) -> None:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    from index.store import EF_SEARCH

    index = DocumentIndex.open(make_settings(tmp_path / "new"), embedder=embedder)
    hnsw = index.store.chunks.configuration["hnsw"]
    assert (hnsw["space"], hnsw["ef_search"]) == ("cosine", EF_SEARCH)
    # a collection made the old way (legacy metadata, Chroma's default breadth) is widened on open
    settings = make_settings(tmp_path / "old")
    client = chromadb.PersistentClient(
        path=str(settings.data_dir / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    meta = {"embedding_model": embedder.identity, "embedding_dim": embedder.dim, "hnsw:space": "cosine"}
    client.create_collection(f"{settings.collection}_chunks", embedding_function=None, metadata=meta)
    assert client.get_collection(f"{settings.collection}_chunks").configuration["hnsw"]["ef_search"] < EF_SEARCH
    old = DocumentIndex.open(settings, embedder=embedder)
    hnsw = old.store.chunks.configuration["hnsw"]
    assert (hnsw["space"], hnsw["ef_search"]) == ("cosine", EF_SEARCH)
    old.add_documents([Document(id="d1", text="The bridge toll is four crowns for cars.", title="Tolls")])
    hits = old.dense_search(embedder.embed_queries(["How much is the bridge toll?"])[0], k=1)
    assert hits[0][0].startswith("d1") and 0.3 < hits[0][1] <= 1.0  # cosine similarity, not an l2 distance
