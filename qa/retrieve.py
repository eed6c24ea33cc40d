"""Hybrid retrieval: dense search in Chroma + BM25, fused with reciprocal rank fusion (RRF)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.pipeline import DocumentIndex, IndexedChunk, day_number
from index.settings import Settings
from qa.types import Filters, Passage


@dataclass(frozen=True)
class Retrieval:
    """Ranked passages plus the query vector (the answerer reuses it to rank sentences)."""

    passages: list[Passage]
    query_vector: np.ndarray


def chroma_where(filters: Filters | None) -> dict[str, object] | None:
    """Translate filters into a Chroma ``where`` clause."""
    if filters is None or filters.empty:
        return None
    clauses: list[dict[str, object]] = []
    if filters.doc_ids:
        clauses.append({"doc_id": {"$in": list(filters.doc_ids)}})
    if filters.sources:
        clauses.append({"source": {"$in": list(filters.sources)}})
    if filters.date_from:
        clauses.append({"published_day": {"$gte": day_number(filters.date_from)}})
    if filters.date_to:
        clauses.append({"published_day": {"$lte": day_number(filters.date_to)}})
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def matches(chunk: IndexedChunk, filters: Filters) -> bool:
    """The same filters, applied to a chunk in memory (for BM25)."""
    if filters.doc_ids and chunk.doc_id not in filters.doc_ids:
        return False
    if filters.sources and chunk.source not in filters.sources:
        return False
    if filters.date_from or filters.date_to:
        if not chunk.published_at:
            return False
        day = chunk.published_at[:10]
        if filters.date_from and day < filters.date_from.isoformat():
            return False
        if filters.date_to and day > filters.date_to.isoformat():
            return False
    return True


def retrieve(
    index: DocumentIndex,
    query: str,
    *,
    settings: Settings,
    filters: Filters | None = None,
    k: int = 5,
    mode: str = "hybrid",
    query_vector: np.ndarray | None = None,
) -> Retrieval:
    """Find the ``k`` best passages for ``query``.

    Args:
        index: the document index (Chroma + BM25).
        query: the (follow-up-resolved) question.
        settings: depths (``dense_k``, ``lexical_k``), ``rrf_k`` and the two weights.
        filters: optional restriction by document, source or date.
        k: passages to return.
        mode: ``hybrid`` (default), ``dense`` or ``lexical``, for comparisons.
        query_vector: the query's embedding when already computed (not embedded again).

    Returns:
        Passages best first, and the query vector.
    """
    vector = index.embedder.embed_queries([query])[0] if query_vector is None else query_vector
    dense: list[tuple[str, float]] = []
    lexical: list[tuple[str, float]] = []
    if mode in ("hybrid", "dense"):
        dense = index.dense_search(vector, k=max(settings.dense_k, k), where=chroma_where(filters))
    if mode in ("hybrid", "lexical"):
        allowed = None
        if filters is not None and not filters.empty:
            allowed = index.chunk_ids_matching(lambda c: matches(c, filters))
        hits = index.lexical_search(query, k=max(settings.lexical_k, k), allowed=allowed)
        lexical = [(h.chunk_id, h.score) for h in hits]
    fused: dict[str, float] = {}
    for weight, ranking in ((settings.dense_weight, dense), (settings.lexical_weight, lexical)):
        for rank, (cid, _) in enumerate(ranking, start=1):
            fused[cid] = fused.get(cid, 0.0) + weight / (settings.rrf_k + rank)
    dense_at = {cid: (rank, score) for rank, (cid, score) in enumerate(dense, start=1)}
    lexical_at = {cid: (rank, score) for rank, (cid, score) in enumerate(lexical, start=1)}
    passages: list[Passage] = []
    for cid in sorted(fused, key=lambda c: (-fused[c], c)):
        chunk = index.chunk(cid)
        if chunk is None:  # written to Chroma by another process a moment ago; next sync has it
            continue
        d, lx = dense_at.get(cid), lexical_at.get(cid)
        passages.append(
            Passage(
                chunk_id=cid,
                doc_id=chunk.doc_id,
                title=chunk.title,
                source=chunk.source,
                url=chunk.url,
                published_at=chunk.published_at,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                score=fused[cid],
                dense_score=d[1] if d else None,
                lexical_score=lx[1] if lx else None,
                dense_rank=d[0] if d else None,
                lexical_rank=lx[0] if lx else None,
            )
        )
        if len(passages) == k:
            break
    return Retrieval(passages=passages, query_vector=vector)


def hybrid_search(
    index: DocumentIndex, query: str, *, settings: Settings, filters: Filters | None = None, k: int = 5
) -> list[Passage]:
    """Ranked passages for ``query`` (see :func:`retrieve`)."""
    return retrieve(index, query, settings=settings, filters=filters, k=k).passages
