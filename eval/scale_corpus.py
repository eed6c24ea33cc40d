"""Large citeqa collections for the scale benchmark, built from SciFact without re-embedding.

SciFact's chunks are embedded once (by an ordinary citeqa index in the cache directory) and exported
to ``.npy`` + JSONL. Bigger collections replicate those documents under new ids: a few words of
each copy are swapped for other words of the same length (so sentence and chunk offsets stay
valid) and each chunk vector gets a little noise (cosine about 0.995 to the original) and is
renormalised. The records are written exactly as :class:`index.pipeline.DocumentIndex` writes
them (same chunker, ids, metadata, registry records and generation token), so ``citeqa serve``
opens the result like any user's index.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from eval.datasets import load_beir
from eval.runner import eval_index
from index.chunking import chunk_document
from index.embedding import Embedder
from index.models import Chunk, Document
from index.records import chunk_metadata, document_metadata
from index.settings import Settings
from index.store import MAX_BATCH, ChromaStore, make_client

SEED_COLLECTION = "eval-scifact"  # what eval_index names the SciFact index
NOISE = 0.005  # per component: |noise| ~ 0.1 for 384 dimensions, cosine to the original ~ 0.995
SWAPS = 3  # words changed per copied document
_SWAPPABLE = re.compile(r"\b[a-z]{5,}\b")


@dataclass(frozen=True)
class SeedChunk:
    start: int
    end: int
    vector_row: int
    sentences: tuple[tuple[int, int], ...]
    sentence_vectors: str  # as stored in chunk metadata (float16, base64)


@dataclass(frozen=True)
class Seed:
    """The SciFact corpus as citeqa indexed it: documents, their chunks and chunk vectors."""

    documents: list[Document]
    chunks: dict[str, list[SeedChunk]]  # doc id -> chunks in document order
    vectors: np.ndarray
    words_by_length: dict[int, list[str]]

    @property
    def chunk_count(self) -> int:
        return sum(len(c) for c in self.chunks.values())


def load_seed(cache: Path, beir: Path, settings: Settings, embedder: Embedder) -> Seed:
    """The exported SciFact seed in ``cache``, embedding SciFact first when it is not there yet.

    Args:
        cache: directory outside the repository for the seed index and its export.
        beir: the SciFact BEIR directory.
        settings: chunking settings (the seed is only valid for the chunking it was built with).
        embedder: the model the collections record.
    """
    tag = f"{embedder.identity.replace(':', '_').replace('@', '_')}-{settings.chunk_size}-{settings.chunk_overlap}"
    export = cache / f"seed-{tag}"
    if not (export / "vectors.npy").is_file():
        _export_seed(cache / "seed", export, beir, settings, embedder)
    vectors = np.load(export / "vectors.npy")
    documents = [_document(json.loads(line)) for line in (export / "documents.jsonl").open(encoding="utf-8")]
    chunks: dict[str, list[SeedChunk]] = {}
    for line in (export / "chunks.jsonl").open(encoding="utf-8"):
        rec = json.loads(line)
        chunks.setdefault(rec["doc_id"], []).append(
            SeedChunk(start=rec["start"], end=rec["end"], vector_row=rec["row"],
                      sentences=tuple((a, b) for a, b in rec["sent"]), sentence_vectors=rec["sv"])
        )
    for items in chunks.values():
        items.sort(key=lambda c: c.start)
    words: dict[int, set[str]] = {}
    for doc in documents[:2000]:
        for word in _SWAPPABLE.findall(doc.text):
            words.setdefault(len(word), set()).add(word)
    return Seed(documents, chunks, vectors, {n: sorted(w) for n, w in words.items()})


def _document(rec: dict[str, Any]) -> Document:
    return Document(id=rec["id"], text=rec["text"], title=rec["title"])


def _export_seed(seed_dir: Path, export: Path, beir: Path, settings: Settings, embedder: Embedder) -> None:
    from api.cli import tqdm_progress

    print(f"seed: indexing SciFact into {seed_dir} (skips what is already there) ...", flush=True)
    with eval_index(load_beir(beir), settings, data_dir=seed_dir, progress=tqdm_progress, embedder=embedder) as index:
        store = index.store
        docs = store.docs.get(include=["documents", "metadatas"])
        rows: list[np.ndarray] = []
        records: list[dict[str, Any]] = []
        offset = 0
        with tqdm(total=store.count_chunks(), desc="export seed", unit="chunk") as bar:
            while True:
                got = store.chunks.get(limit=MAX_BATCH, offset=offset, include=["embeddings", "metadatas"])
                if not got["ids"]:
                    break
                for vec, meta in zip(got["embeddings"], got["metadatas"], strict=True):
                    records.append(
                        {"doc_id": meta["doc_id"], "start": meta["start"], "end": meta["end"],
                         "row": len(rows), "sv": meta.get("sentence_vectors") or "",
                         "sent": json.loads(meta.get("sentences") or "[]")}
                    )
                    rows.append(np.asarray(vec, dtype=np.float32))
                offset += len(got["ids"])
                bar.update(len(got["ids"]))
    export.mkdir(parents=True, exist_ok=True)
    with (export / "documents.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, text, meta in zip(docs["ids"], docs["documents"], docs["metadatas"], strict=True):
            out.write(json.dumps({"id": doc_id, "text": text, "title": meta.get("title", "")}) + "\n")
    with (export / "chunks.jsonl").open("w", encoding="utf-8") as out:
        for rec in records:
            out.write(json.dumps(rec) + "\n")
    np.save(export / "vectors.npy", np.stack(rows))


# replication ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replica:
    document: Document
    chunks: list[Chunk]
    vectors: np.ndarray  # one row per chunk
    sentence_vectors: list[str]


def replicas(seed: Seed, settings: Settings, *, prefix: str = "r") -> Iterator[Replica]:
    """Copies of the seed documents, endlessly: copy 0 is the corpus itself, copy n > 0 has ids
    ``<id>-<prefix><n>``, a few words swapped and noisy vectors. Deterministic."""
    copy = 0
    while True:
        for number, doc in enumerate(seed.documents):
            yield _replica(seed, settings, doc, copy, number, prefix)
        copy += 1


def _replica(seed: Seed, settings: Settings, doc: Document, copy: int, number: int, prefix: str) -> Replica:
    originals = seed.chunks.get(doc.id, [])
    base = np.stack([seed.vectors[c.vector_row] for c in originals]) if originals else np.zeros((0, 1))
    if copy == 0 and prefix == "r":
        chunks = chunk_document(doc, chunk_size=settings.chunk_size, overlap=settings.chunk_overlap)
        return Replica(doc, chunks, base, [c.sentence_vectors for c in originals])
    rng = random.Random(f"{prefix}{copy}/{number}")
    new_id = f"{doc.id}-{prefix}{copy}"
    text = _swap_words(doc.text, seed.words_by_length, rng)
    candidate = Document(id=new_id, text=text, title=doc.title)
    chunks = chunk_document(candidate, chunk_size=settings.chunk_size, overlap=settings.chunk_overlap)
    if [(c.start, c.end, c.sentences) for c in chunks] != [(c.start, c.end, c.sentences) for c in originals]:
        candidate = Document(id=new_id, text=doc.text, title=doc.title)  # the swap moved a boundary
        chunks = chunk_document(candidate, chunk_size=settings.chunk_size, overlap=settings.chunk_overlap)
    noise = np.random.default_rng(rng.getrandbits(32)).normal(0.0, NOISE, size=base.shape).astype(np.float32)
    vectors = base + noise
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return Replica(candidate, chunks, vectors, [c.sentence_vectors for c in originals])


def _swap_words(text: str, words: dict[int, list[str]], rng: random.Random) -> str:
    spots = list(_SWAPPABLE.finditer(text))
    if not spots:
        return text
    chars = list(text)
    for match in rng.sample(spots, min(SWAPS, len(spots))):
        pool = words.get(len(match.group()), [])
        if pool:
            chars[match.start() : match.end()] = rng.choice(pool)
    return "".join(chars)


# writing ----------------------------------------------------------------------------------------
def open_store(settings: Settings, embedder: Embedder) -> ChromaStore:
    return ChromaStore(make_client(settings), name=settings.collection, model_identity=embedder.identity,
                       dim=embedder.dim)


def write_replicas(store: ChromaStore, items: list[Replica], settings: Settings) -> None:
    """Write chunks, then registry records, in the pipeline's order and format."""
    chunking = f"{settings.chunk_size}/{settings.chunk_overlap}"
    now = datetime.now(UTC).isoformat(timespec="seconds")
    ids, texts, metas, vecs = [], [], [], []
    doc_ids, doc_texts, doc_metas, doc_vecs = [], [], [], []
    for item in items:
        for chunk, vec, sv in zip(item.chunks, item.vectors, item.sentence_vectors, strict=True):
            ids.append(chunk.id)
            texts.append(chunk.text)
            metas.append(chunk_metadata(item.document, chunk, sv))
            vecs.append(vec)
        mean = item.vectors.mean(axis=0)
        doc_ids.append(item.document.id)
        doc_texts.append(item.document.text)
        doc_metas.append(document_metadata(item.document, item.chunks, added_at=now, chunking=chunking))
        doc_vecs.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
    store.upsert_chunks(ids, np.stack(vecs), texts, metas)
    store.put_documents(doc_ids, np.stack(doc_vecs), doc_texts, doc_metas)


def build_collection(
    data_dir: Path, *, target_chunks: int, seed: Seed, settings: Settings, embedder: Embedder,
    grow_from: Path | None = None,
) -> dict[str, int]:
    """A citeqa collection of about ``target_chunks`` chunks in ``data_dir`` (reused when a manifest
    says it is already built; started as a copy of ``grow_from`` when given, which holds a prefix
    of the same replica sequence).

    Returns:
        ``{"documents": n, "chunks": n}``.
    """
    manifest = data_dir.with_suffix(".json")
    if manifest.is_file() and data_dir.is_dir():
        done = json.loads(manifest.read_text())
        if done.get("target") == target_chunks:
            return {"documents": done["documents"], "chunks": done["chunks"]}
    shutil.rmtree(data_dir, ignore_errors=True)
    have_docs = have_chunks = 0
    if grow_from is not None:
        shutil.copytree(grow_from, data_dir)
        before = json.loads(grow_from.with_suffix(".json").read_text())
        have_docs, have_chunks = before["documents"], before["chunks"]
    local = settings.model_copy(update={"data_dir": data_dir})
    store = open_store(local, embedder)
    source = replicas(seed, settings)
    for _ in range(have_docs):
        next(source)
    pending: list[Replica] = []
    with tqdm(total=target_chunks, initial=have_chunks, desc=f"build {data_dir.name}", unit="chunk") as bar:
        while have_chunks < target_chunks:
            item = next(source)
            pending.append(item)
            have_docs += 1
            have_chunks += len(item.chunks)
            if sum(len(p.chunks) for p in pending) >= 2000 or have_chunks >= target_chunks:
                write_replicas(store, pending, settings)
                bar.update(sum(len(p.chunks) for p in pending))
                pending = []
    store.bump_generation()
    forget_clients()
    manifest.write_text(json.dumps({"target": target_chunks, "documents": have_docs, "chunks": have_chunks}))
    return {"documents": have_docs, "chunks": have_chunks}


def forget_clients() -> None:
    """Drop chromadb's per-path client cache, so the next opening reads the data dir afresh
    (a ``citeqa serve`` subprocess opens it in between)."""
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


# the plain LangChain + Chroma recipe, for disk use --------------------------------------------
class PrecomputedEmbeddings:
    """A LangChain ``Embeddings`` that hands out vectors set beforehand (never runs a model)."""

    def __init__(self) -> None:
        self.pending: list[list[float]] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if len(texts) != len(self.pending):
            raise RuntimeError("PrecomputedEmbeddings: vectors were not set for this batch")
        out, self.pending = self.pending, []
        return out

    def embed_query(self, text: str) -> list[float]:
        raise RuntimeError("PrecomputedEmbeddings does not embed queries")


def build_langchain(data_dir: Path, *, target_chunks: int, seed: Seed, settings: Settings) -> int:
    """The same chunks (texts, vectors, doc id and title as metadata) through langchain-chroma.

    Returns:
        the number of chunks written.
    """
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma

    shutil.rmtree(data_dir, ignore_errors=True)
    embeddings = PrecomputedEmbeddings()
    db = Chroma(collection_name="langchain", embedding_function=embeddings,  # type: ignore[arg-type]
                persist_directory=str(data_dir), client_settings=ChromaSettings(anonymized_telemetry=False))
    written = 0
    source = replicas(seed, settings)
    with tqdm(total=target_chunks, desc=f"langchain {data_dir.name}", unit="chunk") as bar:
        while written < target_chunks:
            batch: list[Replica] = []
            while written < target_chunks and sum(len(b.chunks) for b in batch) < MAX_BATCH - 100:
                batch.append(next(source))
                written += len(batch[-1].chunks)
            texts = [c.text for b in batch for c in b.chunks]
            metas = [{"doc_id": b.document.id, "title": b.document.title} for b in batch for _ in b.chunks]
            embeddings.pending = [v.tolist() for b in batch for v in b.vectors]
            db.add_texts(texts, metadatas=metas, ids=[c.id for b in batch for c in b.chunks])
            bar.update(len(texts))
    del db
    forget_clients()
    return written
