"""The scale benchmark's collections: replicated documents that citeqa opens and cites like its own."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import SAMPLE_DIR, make_settings

from eval.scale_corpus import build_collection, load_seed
from index.embedding import Embedder
from index.integrity import check_index
from index.loaders import load_paths
from index.pipeline import DocumentIndex


def tiny_beir(where: Path) -> Path:
    """The sample corpus as a BEIR directory (one query, one judgement)."""
    docs = load_paths([SAMPLE_DIR]).documents
    where.mkdir()
    with (where / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}) + "\n")
    (where / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "Who retook Abu Kamal?"}) + "\n")
    (where / "qrels").mkdir()
    (where / "qrels" / "test.tsv").write_text(f"query-id\tcorpus-id\tscore\nq1\t{docs[0].id}\t1\n")
    return where


def test_a_replicated_collection_opens_consistent_and_cites_exact_spans(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path / "unused")
    seed = load_seed(tmp_path / "cache", tiny_beir(tmp_path / "beir"), settings, embedder)
    target = 3 * seed.chunk_count
    data_dir = tmp_path / "cache" / "big"

    built = build_collection(data_dir, target_chunks=target, seed=seed, settings=settings, embedder=embedder)

    assert built["chunks"] >= target and built["documents"] == 3 * len(seed.documents)
    index = DocumentIndex.open(settings.model_copy(update={"data_dir": data_dir}), embedder=embedder)
    assert check_index(index).ok
    assert len(index.chunk_ids()) == index.store.count_chunks() == built["chunks"]
    copies = [d for d in index.list_documents() if d.id.endswith("-r2")]
    assert len(copies) == len(seed.documents)
    for info in copies:
        _, text = index.get_document(info.id)
        _, chunks = index.document_chunks(info.id)
        assert chunks and all(text[c.start : c.end] == c.text for c in chunks)
    # each copy's vectors are the original's plus a little noise: the best chunk comes back three times
    hits = index.dense_search(index.embedder.embed_queries(["Who retook Abu Kamal?"])[0], k=3)
    found = [index.chunk(cid) for cid, _ in hits]
    assert len({(c.doc_id.split("-r")[0], c.start) for c in found if c is not None}) == 1
    # reused, not rebuilt, on the next run
    assert build_collection(data_dir, target_chunks=target, seed=seed, settings=settings, embedder=embedder) == built
