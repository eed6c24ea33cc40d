"""The document index: load -> chunk -> embed -> Chroma + BM25, kept consistent.

Chroma is the source of truth. The BM25 index and the in-memory chunk table are derived from it:
built from Chroma when the index opens, updated in place by this process's own writes, and
reconciled with Chroma whenever the registry's generation token changes (another process wrote to
the same Chroma server). So after any add or delete, in any process, both hold the same chunk ids.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
from index.settings import Settings
from index.store import ChromaStore, StoredChunk, chunk_ids_from_meta, decode_vectors, encode_vectors, make_client

ProgressFactory = Callable[[int, str], Any]  # (total, description) -> object with update(n) and close()
DOCS_PER_GROUP = 256


@dataclass(frozen=True)
class IndexedChunk:
    """A chunk as the answerer sees it: text, offsets, citation metadata and sentence vectors."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    sentences: tuple[tuple[int, int], ...]
    sentence_vectors: np.ndarray


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


def _chunk_spans(chunk: Chunk) -> list[list[int]]:
    """Sentence spans of a chunk relative to its start."""
    return [[s - chunk.start, e - chunk.start] for s, e in chunk.sentences]


def _relative_spans(meta: dict[str, Any]) -> list[list[int]]:
    """Sentence spans recorded in stored chunk metadata, relative to the chunk start."""
    start = int(meta.get("start", 0))
    return [[int(s) - start, int(e) - start] for s, e in json.loads(meta.get("sentences") or "[]")]


def _version(meta: dict[str, Any]) -> str:
    """What identifies a stored document's chunks: its content hash and its chunk ids (re-chunking
    with other settings keeps the hash but changes the ids)."""
    return f"{meta.get('content_hash', '')}|{meta.get('chunk_ids', '')}"


def day_number(value: date) -> int:
    """Days since 1970-01-01, the form date filters compare."""
    return (value - date(1970, 1, 1)).days


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
        self._doc_hashes: dict[str, str] = {}  # doc id -> _version() of what is loaded locally
        self._generation = ""
        self._local_changes = 0  # bumped whenever the in-memory chunk table changes
        self._sources: tuple[int, frozenset[str]] = (-1, frozenset())
        self._lock = threading.RLock()

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
        index.sync(force=True)
        if recover and not settings.chroma_server:
            index._recover_interrupted_write()
        return index

    def before_registry_write(self) -> None:
        """Called between writing a group's chunks and its registry records; does nothing.

        A seam for crash tests, which override it in a subclass to kill the process exactly there.
        """

    def _recover_interrupted_write(self) -> None:
        """Delete chunks a killed writer left without a registry record (embedded data dirs only).

        Only when no other process holds the write lock: a live writer's chunks-before-registry are
        not orphans yet. With a Chroma server, ``citeqa index check --repair`` does this.
        """
        from index.integrity import check_index, repair_index

        lock = dir_lock(self.settings.data_dir, "write.lock")
        if not lock.try_acquire(purpose=f"recovering ({command_line()})"):
            return
        try:
            found = check_index(self)
            if found.orphan_chunks:
                repair_index(self, found)
        finally:
            lock.release()

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
            stale = [d for d in self._doc_hashes if _version(registry.get(d, {})) != self._doc_hashes[d]]
            self._drop_local(stale)
            fresh = [d for d, meta in registry.items() if d not in self._doc_hashes]
            # only the chunks a registry record lists: others are a writer's work in progress (or
            # what a killed writer left) and must not be cited
            listed = {cid for d in fresh for cid in chunk_ids_from_meta(registry[d])}
            stored = self.store.get_chunks(doc_ids=fresh) if fresh else []
            self._load_local(item for item in stored if item.id in listed)
            for doc_id in fresh:
                self._doc_hashes[doc_id] = _version(registry[doc_id])
            self._generation = token
            return bool(stale or fresh)

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
            chunk = self._indexed_chunk(item)
            self._chunks[chunk.id] = chunk
            self._doc_chunks.setdefault(chunk.doc_id, set()).add(chunk.id)
            batch_ids.append(chunk.id)
            batch_texts.append(chunk.text)
        self.lexical.add(batch_ids, batch_texts)

    def _indexed_chunk(self, item: StoredChunk) -> IndexedChunk:
        meta = item.metadata
        return IndexedChunk(
            id=item.id,
            doc_id=str(meta["doc_id"]),
            text=item.text,
            start=int(meta["start"]),
            end=int(meta["end"]),
            title=str(meta.get("title", "")),
            source=meta.get("source"),
            url=meta.get("url"),
            published_at=meta.get("published_at"),
            sentences=tuple(tuple(s) for s in json.loads(meta.get("sentences") or "[]")),  # type: ignore[misc]
            sentence_vectors=decode_vectors(meta.get("sentence_vectors") or "", self.embedder.dim),
        )

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
        strays = max(0, self.store.count_chunks() - known)
        hits = self.store.query(vector, k=k + strays, where=where)
        return [(cid, score) for cid, score in hits if cid in self._chunks][:k]

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
        return [self._info(doc_id, meta) for doc_id, meta in sorted(registry.items())]

    def get_document(self, doc_id: str) -> tuple[DocumentInfo, str]:
        """Metadata and full text of a document.

        Raises:
            DocumentNotFound: no document has that id.
        """
        found = self.store.document_text(doc_id)
        if found is None:
            raise DocumentNotFound(doc_id)
        meta, text = found
        return self._info(doc_id, meta), text

    @staticmethod
    def _info(doc_id: str, meta: dict[str, Any]) -> DocumentInfo:
        return DocumentInfo(
            id=doc_id,
            title=str(meta.get("title", "")),
            source=meta.get("source"),
            url=meta.get("url"),
            published_at=meta.get("published_at"),
            path=meta.get("path"),
            content_hash=str(meta.get("content_hash", "")),
            chunk_count=int(meta.get("chunk_count", 0)),
            chars=int(meta.get("chars", 0)),
            added_at=str(meta.get("added_at", "")),
        )

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
            bar = progress(total_chunks, "embedding") if progress and total_chunks else None
            try:
                for lo in range(0, len(todo), DOCS_PER_GROUP):
                    group = todo[lo : lo + DOCS_PER_GROUP]
                    self._write_group(group, existing, stored_chunks, report, bar)
            finally:
                if bar is not None:
                    bar.close()
                if todo:
                    self._generation = self.store.bump_generation()
                    self.sync(force=True)
        return report

    def _write_group(
        self,
        group: list[tuple[Document, list[Chunk]]],
        existing: dict[str, dict[str, Any]],
        stored_chunks: dict[str, set[str]],
        report: AddReport,
        bar: Any,
    ) -> None:
        all_chunks = [c for _, chunks in group for c in chunks]
        kept = self.store.chunk_vectors([c.id for c in all_chunks if c.id in stored_chunks.get(c.doc_id, set())])
        # Same text can split into other sentences when the rest of the document changed (hard-wrap
        # detection looks at the whole text); stored sentence vectors are only reusable if the spans match.
        by_id = {c.id: c for c in all_chunks}
        kept = {cid: got for cid, got in kept.items() if _relative_spans(got[1]) == _chunk_spans(by_id[cid])}
        new = [c for c in all_chunks if c.id not in kept]
        if bar is not None and kept:
            bar.update(len(kept))
        embedded = self.embedder.embed_chunks(
            [c.text for c in new],
            [[(s - c.start, e - c.start) for s, e in c.sentences] for c in new],
            on_progress=bar.update if bar is not None else None,
        )
        vectors: dict[str, tuple[np.ndarray, str]] = {
            c.id: (e.chunk, encode_vectors(e.sentences)) for c, e in zip(new, embedded, strict=True)
        }
        for cid, (vec, meta) in kept.items():
            vectors[cid] = (vec, str(meta.get("sentence_vectors", "")))
        report.chunks_embedded += len(new)
        docs_by_id = {doc.id: doc for doc, _ in group}
        metadatas = [self._chunk_metadata(docs_by_id[c.doc_id], c, vectors[c.id][1]) for c in all_chunks]
        if all_chunks:
            self.store.upsert_chunks(
                [c.id for c in all_chunks],
                np.stack([vectors[c.id][0] for c in all_chunks]),
                [c.text for c in all_chunks],
                metadatas,
            )
        # The registry record is the commit point: it names the new chunks only once they are
        # written, and the chunks it no longer names go only after it. A process killed at any point
        # leaves, at worst, chunks no record names; readers ignore those and the next writer to open
        # the index (or `citeqa index check --repair`) deletes them.
        now = datetime.now(UTC).isoformat(timespec="seconds")
        doc_vectors, doc_metas = [], []
        for doc, chunks in group:
            mean = np.mean([vectors[c.id][0] for c in chunks], axis=0)
            doc_vectors.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            doc_metas.append({**self._doc_metadata(doc, chunks, now), "chunking": self._chunking})
        self.before_registry_write()
        self.store.put_documents([d.id for d, _ in group], np.stack(doc_vectors), [d.text for d, _ in group], doc_metas)
        stale = [cid for doc, chunks in group for cid in stored_chunks.get(doc.id, set()) - {c.id for c in chunks}]
        self.store.delete_chunks(stale)
        report.chunks_removed += len(stale)
        for doc, _ in group:
            (report.updated if doc.id in existing else report.added).append(doc.id)

    @staticmethod
    def _chunk_metadata(doc: Document, chunk: Chunk, sentence_vectors: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "doc_id": doc.id,
            "index": chunk.index,
            "start": chunk.start,
            "end": chunk.end,
            "title": doc.title,
            "sentences": json.dumps([list(s) for s in chunk.sentences]),
            "sentence_vectors": sentence_vectors,
        }
        # Absent fields are written as None, which makes Chroma delete the key: an upsert merges
        # metadata, so a re-added document would otherwise keep its old source, url and date.
        meta["source"] = doc.source or None
        meta["url"] = doc.url or None
        meta["published_at"] = doc.published_at.isoformat() if doc.published_at else None
        meta["published_day"] = day_number(doc.published_at) if doc.published_at else None
        return meta

    @staticmethod
    def _doc_metadata(doc: Document, chunks: list[Chunk], now: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "title": doc.title,
            "content_hash": doc.content_hash,
            "chunk_count": len(chunks),
            "chunk_ids": json.dumps([c.id for c in chunks]),
            "chars": len(doc.text),
            "added_at": now,
        }
        for key, value in (("source", doc.source), ("url", doc.url), ("path", doc.path)):
            meta[key] = value or None  # None deletes a key the previous version had (see above)
        meta["published_at"] = doc.published_at.isoformat() if doc.published_at else None
        return meta

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
            self._generation = self.store.bump_generation()
            self.sync(force=True)
            return len(ids)
