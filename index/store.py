"""Chroma storage: one collection of chunks, one registry of documents.

* ``<name>_chunks``: one record per chunk: its vector, its text, and metadata (document id, offsets,
  citation fields, sentence spans and sentence vectors for the answerer).
* ``<name>_docs``: one record per document: full text (citations point into it), metadata with the
  content hash and chunk ids, and the mean of its chunk vectors. Its collection metadata holds a
  ``generation`` token that every write changes, so other processes sharing a Chroma server notice
  changes with one cheap call.

Embeddings are always passed explicitly: Chroma's default embedding function would download a model.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from index.errors import CiteqaError, ModelError, StoreError
from index.settings import Settings

log = logging.getLogger(__name__)

# HNSW search breadth for the chunk collection. Chroma's default, 100, lost 0.0033 dense nDCG@10 on
# SciFact against exact search (top-10 overlap 0.995); 200 gave exactly the exact ranking's nDCG
# (overlap 0.998) for about 0.3 ms a query at 13k chunks and 1-2 ms at 100k (eval/README.md).
EF_SEARCH = 200
MAX_BATCH = 5461  # Chroma's per-call limit for add/upsert


def encode_vectors(vectors: np.ndarray) -> str:
    """Pack sentence vectors (float16, row-major) into a metadata string."""
    return base64.b64encode(np.asarray(vectors, dtype=np.float16).tobytes()).decode("ascii")


def decode_vectors(packed: str, dim: int) -> np.ndarray:
    """Inverse of :func:`encode_vectors`."""
    return np.frombuffer(base64.b64decode(packed), dtype=np.float16).reshape(-1, dim)


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    metadata: dict[str, Any]


def make_client(settings: Settings) -> Any:
    """Chroma client: a server when one is configured, else embedded under ``data_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    server = settings.chroma_server
    try:
        if server:
            host, port, ssl = server
            return chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.data_dir / "chroma"), settings=chroma_settings)
    except Exception as exc:  # chromadb raises bare Exception/ValueError for unreachable servers
        where = f"server {server[0]}:{server[1]}" if server else str(settings.data_dir)
        raise StoreError(f"cannot open Chroma at {where}: {exc}") from exc


def _wrap_chroma_errors(cls: type) -> type:
    """Make every public method raise StoreError for failures inside chromadb (an unreachable
    server surfaces as httpx or chromadb exceptions), so callers see one domain error."""

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except CiteqaError:
                raise
            except Exception as exc:
                raise StoreError(f"Chroma failed in {method.__name__}: {type(exc).__name__}: {exc}") from exc

        return wrapper

    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, wrap(member))
    return cls


@_wrap_chroma_errors
class ChromaStore:
    """Chunks and documents in Chroma, checked against the embedding model that built them.

    Args:
        client: a Chroma client (see :func:`make_client`).
        name: collection name prefix.
        model_identity: recorded on a new collection; an existing one must match it.
        dim: vector dimension.
    """

    def __init__(self, client: Any, *, name: str, model_identity: str, dim: int) -> None:
        self.client = client
        self.dim = dim
        self.chunks_name, self.docs_name = f"{name}_chunks", f"{name}_docs"
        self.chunks = self._collection(self.chunks_name, {"embedding_model": model_identity, "embedding_dim": dim})
        recorded = self.chunks.metadata or {}
        if recorded.get("embedding_model") != model_identity:
            raise ModelError(
                f"collection {self.chunks_name!r} was built with embedding model "
                f"{recorded.get('embedding_model')!r}, not {model_identity!r}; use another "
                "CITEQA_COLLECTION or rebuild the index with the model it was built with"
            )
        self._widen_search()
        self.docs = self._collection(self.docs_name, {"generation": uuid.uuid4().hex})

    def _widen_search(self) -> None:
        """Raise an older chunk collection's HNSW ``ef_search`` to :data:`EF_SEARCH` (new ones are
        created with it). Chroma applies it from the next process start on; search still works at
        the old breadth if Chroma refuses, so that only logs."""
        try:
            hnsw = (getattr(self.chunks, "configuration", None) or {}).get("hnsw") or {}
            if int(hnsw.get("ef_search") or 0) < EF_SEARCH:
                self.chunks.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
                self.chunks = self.client.get_collection(self.chunks_name, embedding_function=None)
        except Exception as exc:  # Chroma's errors are untyped; a narrower search is not fatal
            log.warning("could not set ef_search=%d on %s: %s", EF_SEARCH, self.chunks_name, exc)

    def _collection(self, name: str, metadata: dict[str, Any]) -> Any:
        try:
            try:
                return self.client.get_collection(name, embedding_function=None)
            except Exception:
                try:
                    return self.client.create_collection(
                        name,
                        embedding_function=None,
                        metadata=metadata,
                        # not the legacy "hnsw:space" metadata beside it: Chroma then reads the space from
                        # the configuration, which would default to l2
                        configuration={"hnsw": {"space": "cosine", "ef_search": EF_SEARCH}},
                    )
                except Exception:  # created meanwhile by another process
                    return self.client.get_collection(name, embedding_function=None)
        except Exception as exc:
            raise StoreError(f"cannot open Chroma collection {name!r}: {exc}") from exc

    # generation token -------------------------------------------------------------------------
    def generation(self) -> str:
        """The token every write changes (read fresh from Chroma)."""
        meta = self.client.get_collection(self.docs_name, embedding_function=None).metadata or {}
        return str(meta.get("generation", ""))

    def bump_generation(self) -> str:
        token = uuid.uuid4().hex
        self.docs.modify(metadata={"generation": token})
        return token

    def heartbeat(self) -> None:
        """Raise StoreError when Chroma does not answer."""
        try:
            self.client.heartbeat()
        except Exception as exc:
            raise StoreError(f"Chroma is not reachable: {exc}") from exc

    # chunks -----------------------------------------------------------------------------------
    def upsert_chunks(
        self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        for lo in range(0, len(ids), MAX_BATCH):
            hi = lo + MAX_BATCH
            self.chunks.upsert(
                ids=list(ids[lo:hi]),
                embeddings=np.asarray(vectors[lo:hi], dtype=np.float32),
                documents=list(texts[lo:hi]),
                metadatas=list(metadatas[lo:hi]),
            )

    def delete_chunks(self, ids: Sequence[str]) -> None:
        for lo in range(0, len(ids), MAX_BATCH):
            self.chunks.delete(ids=list(ids[lo : lo + MAX_BATCH]))

    def chunk_vectors(self, ids: Sequence[str]) -> dict[str, tuple[np.ndarray, dict[str, Any]]]:
        """Stored vector and metadata of each existing chunk id."""
        found: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
        for lo in range(0, len(ids), MAX_BATCH):
            got = self.chunks.get(ids=list(ids[lo : lo + MAX_BATCH]), include=["embeddings", "metadatas"])
            for cid, vec, meta in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True):
                found[cid] = (np.asarray(vec, dtype=np.float32), dict(meta or {}))
        return found

    def chunk_ids_of(self, doc_ids: Sequence[str]) -> dict[str, set[str]]:
        """Ids of the chunks actually stored for each document."""
        result: dict[str, set[str]] = {d: set() for d in doc_ids}
        for lo in range(0, len(doc_ids), 500):
            part = list(doc_ids[lo : lo + 500])
            got = self.chunks.get(where={"doc_id": {"$in": part}}, include=["metadatas"])
            for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
                result.setdefault(str((meta or {}).get("doc_id")), set()).add(cid)
        return result

    def get_chunks(self, *, doc_ids: Sequence[str] | None = None, page: int = 2000) -> list[StoredChunk]:
        """Every stored chunk (or those of ``doc_ids``), fetched in pages."""
        found: list[StoredChunk] = []
        if doc_ids is not None:
            return list(self.iter_chunks(doc_ids))
        offset = 0
        while True:
            got = self.chunks.get(limit=page, offset=offset, include=["documents", "metadatas"])
            if not got["ids"]:
                return found
            found += self._stored(got)
            offset += len(got["ids"])

    def iter_chunks(self, doc_ids: Sequence[str]) -> Iterator[StoredChunk]:
        """The stored chunks of ``doc_ids``, fetched 500 documents at a time as they are consumed
        (loading a large index then never holds every chunk's metadata at once)."""
        for lo in range(0, len(doc_ids), 500):
            try:  # raised while the caller iterates, outside what _wrap_chroma_errors wraps
                got = self.chunks.get(
                    where={"doc_id": {"$in": list(doc_ids[lo : lo + 500])}}, include=["documents", "metadatas"]
                )
            except Exception as exc:
                raise StoreError(f"Chroma failed in iter_chunks: {type(exc).__name__}: {exc}") from exc
            yield from self._stored(got)

    @staticmethod
    def _stored(got: dict[str, Any]) -> list[StoredChunk]:
        return [
            StoredChunk(id=cid, text=text or "", metadata=dict(meta or {}))
            for cid, text, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        ]

    def all_chunk_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            got = self.chunks.get(limit=10000, offset=offset, include=[])
            if not got["ids"]:
                return ids
            ids.update(got["ids"])
            offset += len(got["ids"])

    def chunk_owners(self, page: int = 10000) -> dict[str, str]:
        """Every stored chunk id with the document id its metadata names."""
        owners: dict[str, str] = {}
        offset = 0
        while True:
            got = self.chunks.get(limit=page, offset=offset, include=["metadatas"])
            if not got["ids"]:
                return owners
            for cid, meta in zip(got["ids"], got["metadatas"], strict=True):
                owners[cid] = str((meta or {}).get("doc_id", ""))
            offset += len(got["ids"])

    def count_chunks(self) -> int:
        return int(self.chunks.count())

    def query(
        self, vector: np.ndarray, *, k: int, where: dict[str, Any] | None = None, total: int | None = None
    ) -> list[tuple[str, float]]:
        """Nearest chunks as (id, cosine similarity), best first.

        Args:
            vector: the query vector.
            k: how many.
            where: Chroma metadata filter.
            total: the number of stored chunks when the caller knows it (counting takes time that
                grows with the collection).
        """
        total = self.count_chunks() if total is None else total
        if total == 0:
            return []
        got = self.chunks.query(
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(k, total),
            where=where or None,
            include=["distances"],
        )
        return [(cid, 1.0 - float(dist)) for cid, dist in zip(got["ids"][0], got["distances"][0], strict=True)]

    # documents --------------------------------------------------------------------------------
    def put_documents(
        self, ids: Sequence[str], vectors: np.ndarray, texts: Sequence[str], metadatas: Sequence[dict[str, Any]]
    ) -> None:
        for lo in range(0, len(ids), MAX_BATCH):
            hi = lo + MAX_BATCH
            self.docs.upsert(
                ids=list(ids[lo:hi]),
                embeddings=np.asarray(vectors[lo:hi], dtype=np.float32),
                documents=list(texts[lo:hi]),
                metadatas=list(metadatas[lo:hi]),
            )

    def document_metadata(self, ids: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Registry metadata by document id (all documents when ``ids`` is None)."""
        result: dict[str, dict[str, Any]] = {}
        if ids is not None:
            for lo in range(0, len(ids), MAX_BATCH):
                got = self.docs.get(ids=list(ids[lo : lo + MAX_BATCH]), include=["metadatas"])
                result.update({d: dict(m or {}) for d, m in zip(got["ids"], got["metadatas"], strict=True)})
            return result
        offset = 0
        while True:
            got = self.docs.get(limit=10000, offset=offset, include=["metadatas"])
            if not got["ids"]:
                return result
            result.update({d: dict(m or {}) for d, m in zip(got["ids"], got["metadatas"], strict=True)})
            offset += len(got["ids"])

    def document_text(self, doc_id: str) -> tuple[dict[str, Any], str] | None:
        got = self.docs.get(ids=[doc_id], include=["metadatas", "documents"])
        if not got["ids"]:
            return None
        return dict(got["metadatas"][0] or {}), got["documents"][0] or ""

    def delete_documents(self, ids: Sequence[str]) -> None:
        if ids:
            self.docs.delete(ids=list(ids))


def chunk_ids_from_meta(meta: dict[str, Any]) -> list[str]:
    """The chunk ids a registry record lists."""
    return list(json.loads(meta.get("chunk_ids") or "[]"))
