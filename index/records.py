"""What the index stores per chunk and per document, and the in-memory form the answerer reads.

The pipeline writes these records and reads them back; the scale benchmark writes the same records
directly (``eval/scale_corpus.py``), so both must come from here.
"""

from __future__ import annotations

import ctypes
import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from index.models import Chunk, Document, DocumentInfo
from index.store import StoredChunk, decode_vectors


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


def day_number(value: date) -> int:
    """Days since 1970-01-01, the form date filters compare."""
    return (value - date(1970, 1, 1)).days


def chunk_spans(chunk: Chunk) -> list[list[int]]:
    """Sentence spans of a chunk relative to its start."""
    return [[s - chunk.start, e - chunk.start] for s, e in chunk.sentences]


def relative_spans(meta: dict[str, Any]) -> list[list[int]]:
    """Sentence spans recorded in stored chunk metadata, relative to the chunk start."""
    start = int(meta.get("start", 0))
    return [[int(s) - start, int(e) - start] for s, e in json.loads(meta.get("sentences") or "[]")]


def version_key(meta: dict[str, Any]) -> str:
    """What identifies a stored document's chunks: its content hash and its chunk ids (re-chunking
    with other settings keeps the hash but changes the ids)."""
    return f"{meta.get('content_hash', '')}|{meta.get('chunk_ids', '')}"


def chunk_metadata(doc: Document, chunk: Chunk, sentence_vectors: str) -> dict[str, Any]:
    """The Chroma metadata of one chunk.

    Args:
        doc: the document the chunk belongs to (citation fields come from it).
        chunk: the chunk.
        sentence_vectors: its sentence vectors, packed by :func:`index.store.encode_vectors`.
    """
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


def document_metadata(doc: Document, chunks: list[Chunk], *, added_at: str, chunking: str) -> dict[str, Any]:
    """The registry record's metadata of one document.

    Args:
        doc: the document.
        chunks: all its chunks, in order.
        added_at: ISO timestamp of the write.
        chunking: ``"<chunk size>/<overlap>"`` it was chunked with.
    """
    meta: dict[str, Any] = {
        "title": doc.title,
        "content_hash": doc.content_hash,
        "chunk_count": len(chunks),
        "chunk_ids": json.dumps([c.id for c in chunks]),
        "chars": len(doc.text),
        "added_at": added_at,
    }
    for key, value in (("source", doc.source), ("url", doc.url), ("path", doc.path)):
        meta[key] = value or None  # None deletes a key the previous version had (see above)
    meta["published_at"] = doc.published_at.isoformat() if doc.published_at else None
    meta["chunking"] = chunking
    return meta


def indexed_chunk(item: StoredChunk, dim: int) -> IndexedChunk:
    """The in-memory form of a stored chunk."""
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
        sentence_vectors=decode_vectors(meta.get("sentence_vectors") or "", dim),
    )


def document_info(doc_id: str, meta: dict[str, Any]) -> DocumentInfo:
    """What listing a document shows, from its registry record's metadata."""
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


def release_free_memory() -> None:
    """Give memory freed by a bulk load back to the operating system.

    Loading a large index reads every chunk's text and metadata; glibc keeps the freed pages of
    those transient objects in the process (about 10 kB per chunk, measured at 10k chunks), which
    would put a 100k-chunk server well over its memory budget. Elsewhere this does nothing.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
