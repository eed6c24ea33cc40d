"""Checking and mending what an interrupted write can leave in the index.

Writes follow one order (chunks, then the registry record that names them, then the chunks it no
longer names), so a process killed at any point leaves at most *orphan chunks*: stored chunks no
registry record lists. Readers already ignore them; :func:`repair_index` deletes them. Indexes
written by older versions could also lose chunks a record lists (*missing chunks*); those
documents are re-indexed from the full text the registry keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from index.locking import command_line, dir_lock
from index.models import Document
from index.store import chunk_ids_from_meta

if TYPE_CHECKING:
    from index.pipeline import DocumentIndex


@dataclass
class IndexCheck:
    """What :func:`check_index` found."""

    documents: int
    chunks: int
    orphan_chunks: list[str] = field(default_factory=list)
    missing_chunks: dict[str, list[str]] = field(default_factory=dict)  # doc id -> listed ids not stored

    @property
    def ok(self) -> bool:
        return not self.orphan_chunks and not self.missing_chunks


@dataclass
class RepairReport:
    orphan_chunks_deleted: int = 0
    documents_reindexed: list[str] = field(default_factory=list)


def check_index(index: DocumentIndex) -> IndexCheck:
    """Compare the chunk collection with the document registry.

    Args:
        index: the opened index.

    Returns:
        Orphan chunks (no record lists them) and, per document, listed chunks that are not stored.
    """
    registry = index.store.document_metadata()
    owners = index.store.chunk_owners()
    listed: dict[str, str] = {}
    for doc_id, meta in registry.items():
        for cid in chunk_ids_from_meta(meta):
            listed[cid] = doc_id
    found = IndexCheck(documents=len(registry), chunks=len(owners))
    found.orphan_chunks = sorted(cid for cid, owner in owners.items() if listed.get(cid) != owner)
    for cid, doc_id in listed.items():
        if cid not in owners:
            found.missing_chunks.setdefault(doc_id, []).append(cid)
    return found


def repair_index(index: DocumentIndex, found: IndexCheck | None = None) -> RepairReport:
    """Delete orphan chunks and re-index documents with missing chunks from their stored text.

    Run it when no other process is writing to the same Chroma (on an embedded data dir the write
    lock sees to that).
    """
    report = RepairReport()
    with index.write_lock():
        found = check_index(index) if found is None else found
        index.store.delete_chunks(found.orphan_chunks)
        report.orphan_chunks_deleted = len(found.orphan_chunks)
        docs = []
        for doc_id in sorted(found.missing_chunks):
            stored = index.store.document_text(doc_id)
            if stored is None:
                continue
            meta, text = stored
            published = meta.get("published_at")
            docs.append(
                Document(
                    id=doc_id,
                    text=text,
                    title=str(meta.get("title") or doc_id),
                    source=meta.get("source"),
                    url=meta.get("url"),
                    published_at=date.fromisoformat(published) if published else None,
                    path=meta.get("path"),
                )
            )
        if docs:
            index._drop_local(d.id for d in docs)  # loaded without the missing chunks: reload them
            index.add_documents(docs)
            report.documents_reindexed = [d.id for d in docs]
        index.store.bump_generation()
        index.sync(force=True)
    return report


def recover_interrupted_write(index: DocumentIndex) -> None:
    """Delete chunks a killed writer left without a registry record (embedded data dirs only).

    Only when no other process holds the write lock: a live writer's chunks-before-registry are
    not orphans yet. With a Chroma server, ``citeqa index check --repair`` does this.
    """
    lock = dir_lock(index.settings.data_dir, "write.lock")
    if not lock.try_acquire(purpose=f"recovering ({command_line()})"):
        return
    try:
        # Opening loaded every chunk a record lists (each by its own document's record): when
        # Chroma holds no more chunks than that and nobody wrote since, there are no orphans,
        # and the full scan of chunk metadata (the slowest part of opening a large index) is
        # not needed.
        unchanged = index.store.generation() == index.loaded_generation
        if index.store.count_chunks() == index.loaded_chunk_count and unchanged:
            return
        found = check_index(index)
        if found.orphan_chunks:
            repair_index(index, found)
    finally:
        lock.release()
