"""A local snapshot of what opening an index derives from Chroma: the chunk table and BM25.

Opening a large index used to read every chunk back from Chroma, decode its metadata and analyse its
text for BM25: 36 s at 100k chunks, measured. The snapshot keeps the result in one file beside the
data (``<data dir>/snapshots/``), so the next process loads it in a fraction of that.

It is a cache, never the truth. Every document in it carries the version key (content hash and chunk
ids) it had when the snapshot was written; on open the index compares those with the registry in
Chroma exactly as :meth:`index.pipeline.DocumentIndex.sync` does between two processes: documents
changed or deleted since are dropped from what was loaded, documents added since are read from
Chroma. A snapshot that cannot be read, was written by another format or another embedding model,
or for another collection or server is ignored (and replaced at the next write of one).

The file is a pickle, written to a temporary file and renamed into place. Like Chroma's own
``index_metadata.pickle`` in the same directory, it is trusted as much as the data directory is:
whoever can write there can change the index anyway.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.lexical import BM25Index
from index.records import IndexedChunk
from index.settings import Settings

if TYPE_CHECKING:
    from index.pipeline import DocumentIndex

FORMAT = 1
log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """The derived state of an index: per document its version key and chunk ids, every chunk, BM25."""

    doc_hashes: dict[str, str]
    doc_chunks: dict[str, set[str]]
    chunks: dict[str, IndexedChunk]
    lexical: BM25Index

    def __getstate__(self) -> dict[str, Any]:
        # every chunk's sentence vectors in one array: a hundred thousand small arrays unpickle
        # slower and leave the heap fragmented (150 MB more resident at 100k chunks, measured)
        chunks = list(self.chunks.values())
        vectors = [c.sentence_vectors for c in chunks]
        fields = [{k: v for k, v in vars(c).items() if k != "sentence_vectors"} for c in chunks]
        return {
            "doc_hashes": self.doc_hashes,
            "doc_chunks": self.doc_chunks,
            "chunk_fields": fields,
            "vector_rows": np.asarray([len(v) for v in vectors], dtype=np.int64),
            "vectors": np.concatenate(vectors) if vectors else np.zeros((0, 0), dtype=np.float16),
            "lexical": self.lexical,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.doc_hashes, self.doc_chunks, self.lexical = state["doc_hashes"], state["doc_chunks"], state["lexical"]
        ends = np.cumsum(state["vector_rows"]).tolist()
        vectors = state["vectors"]
        self.chunks = {}
        for fields, start, end in zip(state["chunk_fields"], [0, *ends[:-1]], ends, strict=True):
            chunk = IndexedChunk(**fields, sentence_vectors=vectors[start:end])
            self.chunks[chunk.id] = chunk


def snapshot_path(settings: Settings) -> Path:
    """Where the snapshot of the index ``settings`` point at lives (one file per collection and store)."""
    server = settings.chroma_server
    where = f"{server[0]}:{server[1]}" if server else "embedded"
    tag = hashlib.sha256(f"{where}\x00{settings.collection}".encode()).hexdigest()[:12]
    return settings.data_dir / "snapshots" / f"{settings.collection[:40]}-{tag}.pickle"


def _header(settings: Settings, identity: str, dim: int) -> dict[str, Any]:
    server = settings.chroma_server
    return {
        "format": FORMAT,
        "collection": settings.collection,
        "store": f"{server[0]}:{server[1]}" if server else "embedded",
        "embedding_model": identity,
        "dim": dim,
    }


def save_snapshot(path: Path, snapshot: Snapshot, *, settings: Settings, identity: str, dim: int) -> int:
    """Write ``snapshot`` atomically (temporary file, then rename).

    Returns:
        The file's size in bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            pickle.dump(_header(settings, identity, dim), out, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump(snapshot, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path.stat().st_size


def load_snapshot(path: Path, *, settings: Settings, identity: str, dim: int) -> Snapshot | None:
    """The snapshot at ``path`` when it exists and was written for this collection, store, model and
    format; None otherwise (the reason is logged)."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as src:
            header = pickle.load(src)
            if header != _header(settings, identity, dim):
                log.info("ignoring index snapshot %s: written for %s", path, header)
                return None
            gc.disable()  # millions of new objects, none of them garbage: collections would only cost time
            try:
                snapshot = pickle.load(src)
            finally:
                gc.enable()
    except Exception as exc:  # a truncated or foreign file: rebuild from Chroma instead
        log.warning("ignoring unreadable index snapshot %s: %s: %s", path, type(exc).__name__, exc)
        return None
    if not isinstance(snapshot, Snapshot):
        log.warning("ignoring index snapshot %s: it holds a %s", path, type(snapshot).__name__)
        return None
    return snapshot


def restore_snapshot(index: DocumentIndex) -> bool:
    """Load ``index``'s chunk table and BM25 from its snapshot, when there is a usable one; the sync
    that follows in :meth:`DocumentIndex.open` reconciles it with the registry.

    Returns:
        True when a snapshot was loaded.
    """
    settings = index.settings
    if not settings.snapshot_min_chunks:
        return False
    found = load_snapshot(
        snapshot_path(settings), settings=settings, identity=index.embedder.identity, dim=index.embedder.dim
    )
    if found is None:
        return False
    index.adopt(found)
    return True
