"""Writing documents in the crash-safe order: chunks, then the registry record that names them, then
the chunks it no longer names (see :mod:`index.integrity` for what an interruption leaves)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from index.models import AddReport, Chunk, Document
from index.records import chunk_metadata, chunk_spans, document_metadata, relative_spans
from index.store import encode_vectors

if TYPE_CHECKING:
    from index.encoders import Encoder
    from index.pipeline import DocumentIndex


def write_group(
    index: DocumentIndex,
    group: list[tuple[Document, list[Chunk]]],
    *,
    existing: dict[str, dict[str, Any]],
    stored_chunks: dict[str, set[str]],
    report: AddReport,
    bar: Any,
    encoder: Encoder | None = None,
) -> None:
    """Embed and write one group of documents: chunks, then registry records, then stale chunks.

    Args:
        index: the index written to (its store, embedder and chunking settings).
        group: documents with their chunks.
        existing: registry metadata of the documents already stored.
        stored_chunks: chunk ids stored per existing document (unchanged ones are not re-embedded).
        report: filled in with what was added, updated, embedded and removed.
        bar: progress bar (``update(n)``) or None.
        encoder: the forward pass for the new chunks (default: the embedder's query encoder).
    """
    all_chunks = [c for _, chunks in group for c in chunks]
    kept = index.store.chunk_vectors([c.id for c in all_chunks if c.id in stored_chunks.get(c.doc_id, set())])
    # Same text can split into other sentences when the rest of the document changed (hard-wrap
    # detection looks at the whole text); stored sentence vectors are only reusable if the spans match.
    by_id = {c.id: c for c in all_chunks}
    kept = {cid: got for cid, got in kept.items() if relative_spans(got[1]) == chunk_spans(by_id[cid])}
    new = [c for c in all_chunks if c.id not in kept]
    if bar is not None and kept:
        bar.update(len(kept))
    embedded = index.embedder.embed_chunks(
        [c.text for c in new],
        [[(s - c.start, e - c.start) for s, e in c.sentences] for c in new],
        on_progress=bar.update if bar is not None else None,
        encoder=encoder,
    )
    vectors: dict[str, tuple[np.ndarray, str]] = {
        c.id: (e.chunk, encode_vectors(e.sentences)) for c, e in zip(new, embedded, strict=True)
    }
    for cid, (vec, meta) in kept.items():
        vectors[cid] = (vec, str(meta.get("sentence_vectors", "")))
    report.chunks_embedded += len(new)
    if new:
        report.embedded_with = (encoder or index.embedder.encoder).backend
    docs_by_id = {doc.id: doc for doc, _ in group}
    metadatas = [chunk_metadata(docs_by_id[c.doc_id], c, vectors[c.id][1]) for c in all_chunks]
    if all_chunks:
        index.store.upsert_chunks(
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
        doc_metas.append(document_metadata(doc, chunks, added_at=now, chunking=index._chunking))
    index.before_registry_write()
    index.store.put_documents(
        [d.id for d, _ in group], np.stack(doc_vectors), [d.text for d, _ in group], doc_metas
    )
    stale = [cid for doc, chunks in group for cid in stored_chunks.get(doc.id, set()) - {c.id for c in chunks}]
    index.store.delete_chunks(stale)
    report.chunks_removed += len(stale)
    for doc, _ in group:
        (report.updated if doc.id in existing else report.added).append(doc.id)
