"""The document index: load -> chunk -> embed -> Chroma + BM25, kept consistent.

Chroma is the source of truth. The BM25 index and the in-memory chunk table are derived from it:
built from Chroma when the index opens, updated in place by this process's own writes, and
reconciled with Chroma whenever the registry's generation token changes (another process wrote to
the same Chroma server). So after any add or delete, in any process, both hold the same chunk ids.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.chunking import chunk_document
from index.embedding import Embedder
from index.errors import DocumentNotFound
from index.lexical import BM25Index, LexicalHit
from index.loaders import load_paths
from index.locking import command_line, dir_lock
from index.models import AddReport, Chunk, Document, DocumentInfo
from index.records import IndexedChunk, day_number, document_info, indexed_chunk, release_free_memory, version_key
from index.settings import Settings
from index.snapshot import Snapshot, restore_snapshot, save_snapshot, snapshot_path
from index.store import ChromaStore, StoredChunk, chunk_ids_from_meta, make_client
from index.writing import write_group

__all__ = ["DocumentIndex", "IndexStats", "IndexedChunk", "ProgressFactory", "day_number"]

log = logging.getLogger(__name__)
ProgressFactory = Callable[[int, str], Any]  # (total, description) -> object with update(n) and close()
DOCS_PER_GROUP = 256
BULK_LOAD = 5000  # chunks: loading this many leaves freed memory worth handing back


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    lexical_chunks: int
    lexical_terms: int
    embedding_model: str
    store: str
    data_dir: str | None
    disk_bytes: int | None


class DocumentIndex:
    """Everything citeqa has indexed, and the operations on it.

    Build with :meth:`open`; it loads the chunk table and BM25 from Chroma.
    """

    def __init__(self, *, store: ChromaStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self.lexical = BM25Index()
        self._chunks: dict[str, IndexedChunk] = {}
        self._doc_chunks: dict[str, set[str]] = {}
        self._doc_hashes: dict[str, str] = {}  # doc id -> version_key() of what is loaded locally
        self._generation = ""
        self._local_changes = 0  # bumped whenever the in-memory chunk table changes
        self._sources: tuple[int, frozenset[str]] = (-1, frozenset())
        self._count: tuple[str | None, int] = (None, 0)  # (generation, chunks stored in Chroma)
        self._lock = threading.RLock()
        self._chunks_read = 0  # chunks this process has read back from Chroma (not from a snapshot)

    @classmethod
    def open(
        cls, settings: Settings, *, embedder: Embedder | None = None, load_model: bool = True, recover: bool = True
    ) -> DocumentIndex:
        """Open (or create) the index that ``settings`` point at.

        Args:
            settings: where the index is and how it is built.
            embedder: an already loaded model to share.
            load_model: False defers loading the model to its first use (listing, deleting and
                statistics never embed); its weights are verified either way.
            recover: on an embedded data dir no other process is writing to, delete chunks a killed
                writer left behind (``citeqa index check`` passes False to report them instead).
        """
        embedder = embedder or Embedder.from_settings(settings, load=load_model)
        if settings.chroma_server:
            store = ChromaStore(
                make_client(settings), name=settings.collection, model_identity=embedder.identity, dim=embedder.dim
            )
        else:
            # two processes creating a new embedded database at once collide ("table collections
            # already exists"): set-up is serialised across processes
            init = dir_lock(settings.data_dir, "init.lock")
            with init.held(timeout=settings.lock_timeout, purpose=f"opening ({command_line()})"):
                store = ChromaStore(
                    make_client(settings), name=settings.collection, model_identity=embedder.identity, dim=embedder.dim
                )
        index = cls(store=store, embedder=embedder, settings=settings)
        restored = restore_snapshot(index)
        index.sync(force=True)
        if settings.snapshot_min_chunks and index._chunks_read >= settings.snapshot_min_chunks:
            try:
                index.write_snapshot()
            except OSError as exc:  # a read-only or full disk costs the next start time, nothing else
                log.warning("could not write the index snapshot: %s", exc)
        elif restored and not index._chunks:
            snapshot_path(settings).unlink(missing_ok=True)  # the collection was emptied or replaced
        if restored:
            release_free_memory()  # what unpickling and reading the registry left behind
        if recover and not settings.chroma_server:
            from index.integrity import recover_interrupted_write

            recover_interrupted_write(index)
        return index

    def adopt(self, snapshot: Snapshot) -> None:
        """Take the chunk table and BM25 from a snapshot (see :func:`index.snapshot.restore_snapshot`)."""
        self._doc_hashes, self._doc_chunks = snapshot.doc_hashes, snapshot.doc_chunks
        self._chunks, self.lexical = snapshot.chunks, snapshot.lexical
        self._local_changes += 1

    @property
    def loaded_chunk_count(self) -> int:
        """Chunks in the in-memory chunk table."""
        return len(self._chunks)

    @property
    def loaded_generation(self) -> str:
        """The registry's generation token when this process last synced with Chroma."""
        return self._generation

    def write_snapshot(self) -> int:
        """Write the chunk table and BM25 to the local snapshot, so the next process opening this
        index reads only what changed since from Chroma.

        Returns:
            The snapshot's size in bytes.
        """
        with self._lock:
            snapshot = Snapshot(
                doc_hashes=self._doc_hashes, doc_chunks=self._doc_chunks, chunks=self._chunks, lexical=self.lexical
            )
            size = save_snapshot(
                snapshot_path(self.settings),
                snapshot,
                settings=self.settings,
                identity=self.embedder.identity,
                dim=self.embedder.dim,
            )
            self._chunks_read = 0
            return size

    def before_registry_write(self) -> None:
        """Called between writing a group's chunks and its registry records; does nothing.

        A seam for crash tests, which override it in a subclass to kill the process exactly there.
        """

    def write_lock(self) -> Any:
        """The cross-process write lock of an embedded data dir, held around every write (a no-op
        context for a Chroma server, which serialises writes itself)."""
        from contextlib import nullcontext

        if self.settings.chroma_server:
            return nullcontext()
        return dir_lock(self.settings.data_dir, "write.lock").held(
            timeout=self.settings.lock_timeout, purpose=command_line()
        )

    # reading --------------------------------------------------------------------------------
    def sync(self, *, force: bool = False) -> bool:
        """Bring BM25 and the chunk table in line with Chroma if anything changed there.

        Returns:
            True when something was reloaded.
        """
        with self._lock:
            token = self.store.generation()
            if token == self._generation and not force:
                return False
            registry = self.store.document_metadata()
            stale = [d for d in self._doc_hashes if version_key(registry.get(d, {})) != self._doc_hashes[d]]
            self._drop_local(stale)
            fresh = [d for d in registry if d not in self._doc_hashes]
            self._load_documents({d: registry[d] for d in fresh})
            self._generation = token
            return bool(stale or fresh)

    def _load_documents(self, records: dict[str, dict[str, Any]]) -> None:
        """Load the chunks that these registry records list into BM25 and the chunk table."""
        if not records:
            return
        # only the chunks a document's record lists: others are a writer's work in progress (or
        # what a killed writer left) and must not be cited
        listed = {cid: doc_id for doc_id, meta in records.items() for cid in chunk_ids_from_meta(meta)}
        stored = self.store.iter_chunks(list(records))
        self._load_local(item for item in stored if listed.get(item.id) == item.metadata.get("doc_id"))
        for doc_id, meta in records.items():
            self._doc_hashes[doc_id] = version_key(meta)
        if len(listed) >= BULK_LOAD:
            release_free_memory()

    def _refresh_after_write(self, doc_ids: Iterable[str]) -> None:
        """Tell other processes about this process's write (a new generation token) and reload the
        documents it wrote.

        On an embedded data dir the writer holds the write lock and was in sync when it took it, so
        only these documents can have changed: reloading them is what a full :meth:`sync` would
        do, at a cost that grows with the write and not with the collection (a full sync reads
        every registry record). On a Chroma server others may have written meanwhile, so the
        whole registry is compared.
        """
        self._generation = self.store.bump_generation()
        if self.settings.chroma_server:
            self.sync(force=True)
            return
        ids = sorted(set(doc_ids))
        self._drop_local(ids)
        self._load_documents(self.store.document_metadata(ids))

    def _drop_local(self, doc_ids: Iterable[str]) -> None:
        self._local_changes += 1
        for doc_id in doc_ids:
            ids = self._doc_chunks.pop(doc_id, set())
            self.lexical.remove(ids)
            for cid in ids:
                self._chunks.pop(cid, None)
            self._doc_hashes.pop(doc_id, None)

    def _load_local(self, stored: Iterable[StoredChunk]) -> None:
        self._local_changes += 1
        batch_ids: list[str] = []
        batch_texts: list[str] = []
        for item in stored:
            self._chunks_read += 1
            chunk = indexed_chunk(item, self.embedder.dim)
            self._chunks[chunk.id] = chunk
            self._doc_chunks.setdefault(chunk.doc_id, set()).add(chunk.id)
            batch_ids.append(chunk.id)
            batch_texts.append(chunk.text)
        self.lexical.add(batch_ids, batch_texts)

    def document_version(self, doc_id: str) -> str:
        """The version key of one document (content hash and chunk ids; "" when not indexed)."""
        return self._doc_hashes.get(doc_id, "")

    def document_chunks(self, doc_id: str) -> tuple[str, list[IndexedChunk]]:
        """A version key (content hash and chunk ids) and the in-memory chunks (in document order) of one document."""
        with self._lock:
            chunks = [self._chunks[c] for c in self._doc_chunks.get(doc_id, ()) if c in self._chunks]
            return self._doc_hashes.get(doc_id, ""), sorted(chunks, key=lambda c: c.start)

    def chunk(self, chunk_id: str) -> IndexedChunk | None:
        return self._chunks.get(chunk_id)

    def sources(self) -> frozenset[str]:
        """The distinct ``source`` values of the loaded documents (cached until the index changes)."""
        with self._lock:
            if self._sources[0] != self._local_changes:
                found = set()
                for ids in self._doc_chunks.values():
                    chunk = self._chunks.get(next(iter(ids))) if ids else None
                    if chunk is not None and chunk.source:
                        found.add(chunk.source)
                self._sources = (self._local_changes, frozenset(found))
            return self._sources[1]

    def chunk_ids(self) -> set[str]:
        with self._lock:
            return set(self._chunks)

    def dense_search(
        self, vector: np.ndarray, *, k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks in Chroma as (chunk id, cosine similarity), only chunks of registered documents.

        Chunks no registry record lists (a write in progress, or left by a killed writer) are skipped
        without costing the caller any of its ``k`` results.
        """
        with self._lock:
            known = len(self._chunks)
        total = self._stored_count()
        want = k + max(0, total - known)
        hits = self.store.query(vector, k=want, where=where, total=total)
        found = [(cid, score) for cid, score in hits if cid in self._chunks]
        if len(found) < k and len(hits) >= min(want, total):
            # Chroma may hold more chunks than counted (another process is writing): count afresh
            total = self._stored_count(recount=True)
            want = k + max(0, total - known)
            hits = self.store.query(vector, k=want, where=where, total=total)
            found = [(cid, score) for cid, score in hits if cid in self._chunks]
        return found[:k]

    def _stored_count(self, *, recount: bool = False) -> int:
        """Chunks stored in Chroma, counted once per generation: a count takes time that grows with
        the collection, and only a write changes it."""
        if recount or self._count[0] != self._generation:
            self._count = (self._generation, self.store.count_chunks())
        return self._count[1]

    def lexical_search(self, query: str, *, k: int, allowed: set[str] | None = None) -> list[LexicalHit]:
        with self._lock:
            return self.lexical.search(query, k=k, allowed=allowed)

    def chunk_ids_matching(self, predicate: Callable[[IndexedChunk], bool]) -> set[str]:
        with self._lock:
            return {cid for cid, chunk in self._chunks.items() if predicate(chunk)}

    @property
    def _chunking(self) -> str:
        """How documents are chunked now; a document chunked otherwise is re-chunked when re-added."""
        return f"{self.settings.chunk_size}/{self.settings.chunk_overlap}"

    def list_documents(self) -> list[DocumentInfo]:
        """Every stored document with its chunk count, sorted by id."""
        registry = self.store.document_metadata()
        return [document_info(doc_id, meta) for doc_id, meta in sorted(registry.items())]

    def get_document(self, doc_id: str) -> tuple[DocumentInfo, str]:
        """Metadata and full text of a document.

        Raises:
            DocumentNotFound: no document has that id.
        """
        found = self.store.document_text(doc_id)
        if found is None:
            raise DocumentNotFound(doc_id)
        meta, text = found
        return document_info(doc_id, meta), text

    def stats(self) -> IndexStats:
        """Figures about the index, cheap enough for every metrics scrape (counts come from memory)."""
        self.sync()
        server = self.settings.chroma_server
        data_dir = None if server else self.settings.data_dir
        size = None
        if data_dir is not None and data_dir.exists():
            size = sum(p.stat().st_size for p in Path(data_dir).rglob("*") if p.is_file())
        return IndexStats(
            documents=len(self._doc_hashes),
            chunks=self.store.count_chunks(),
            lexical_chunks=len(self.lexical),
            lexical_terms=self.lexical.term_count,
            embedding_model=self.embedder.identity,
            store=f"chroma server {server[0]}:{server[1]}" if server else "chroma embedded",
            data_dir=str(data_dir) if data_dir else None,
            disk_bytes=size,
        )

    # writing --------------------------------------------------------------------------------
    def add_paths(self, paths: Sequence[str | Path], *, progress: ProgressFactory | None = None) -> AddReport:
        """Load files and directories and add their documents; failures are reported, not raised."""
        loaded = load_paths(paths)
        report = self.add_documents(loaded.documents, progress=progress)
        report.failed[:0] = loaded.failures
        return report

    def add_documents(self, docs: Sequence[Document], *, progress: ProgressFactory | None = None) -> AddReport:
        """Add or replace documents; an unchanged document is skipped.

        A changed document keeps the chunks whose text did not change (no re-embedding) and loses
        the ones that are gone. Documents are written in groups, so an interruption leaves every
        finished group complete and consistent.
        """
        report = AddReport()
        with self.write_lock(), self._lock:
            self.sync()
            existing = self.store.document_metadata([d.id for d in docs])
            stored_chunks = self.store.chunk_ids_of([d.id for d in docs if d.id in existing])
            todo: list[tuple[Document, list[Chunk]]] = []
            for doc in docs:
                meta = existing.get(doc.id)
                # Same text and metadata, chunked the same way: nothing to do.
                if meta and meta.get("content_hash") == doc.content_hash and meta.get("chunking") == self._chunking:
                    if set(chunk_ids_from_meta(meta)) == stored_chunks.get(doc.id, set()):
                        report.unchanged.append(doc.id)
                        continue
                chunks = chunk_document(doc, chunk_size=self.settings.chunk_size, overlap=self.settings.chunk_overlap)
                todo.append((doc, chunks))
            total_chunks = sum(len(chunks) for _, chunks in todo)
            new_chunks = sum(c.id not in stored_chunks.get(doc.id, set()) for doc, chunks in todo for c in chunks)
            encoder = self.embedder.chunk_encoder(new_chunks) if new_chunks else None
            bar = progress(total_chunks, "embedding") if progress and total_chunks else None
            try:
                for lo in range(0, len(todo), DOCS_PER_GROUP):
                    group = todo[lo : lo + DOCS_PER_GROUP]
                    write_group(
                        self, group, existing=existing, stored_chunks=stored_chunks, report=report, bar=bar,
                        encoder=encoder,
                    )
            finally:
                if bar is not None:
                    bar.close()
                if todo:
                    self._refresh_after_write(doc.id for doc, _ in todo)
        return report

    def delete(self, doc_id: str) -> int:
        """Delete a document and its chunks from Chroma and BM25.

        Returns:
            The number of chunks removed.

        Raises:
            DocumentNotFound: no document has that id.
        """
        with self.write_lock(), self._lock:
            self.sync()
            if not self.store.document_metadata([doc_id]):
                raise DocumentNotFound(doc_id)
            ids = sorted(self.store.chunk_ids_of([doc_id]).get(doc_id, set()))
            # registry record first: a kill in between leaves unlisted chunks, which recovery removes
            self.store.delete_documents([doc_id])
            self.store.delete_chunks(ids)
            self._refresh_after_write([doc_id])
            return len(ids)
