"""``auto`` embeds large indexing jobs with torch-bf16 where the CPU has native bf16 and the vectors
match fp32 to the ONNX bar; questions and small jobs stay on ONNX, and explicit backends never switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DIR, make_settings

import index.embedding as embedding
from index.embedding import Embedder
from index.encoders import bf16_unsupported
from index.onnx_export import MIN_COSINE
from index.pipeline import DocumentIndex
from index.store import decode_vectors

NATIVE_BF16 = bf16_unsupported("cpu") is None


@pytest.fixture()
def small_bulk_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """A threshold the sample corpus (about a dozen chunks) reaches, so the test need not embed 2,000."""
    monkeypatch.setattr(embedding, "BULK_MIN_CHUNKS", 5)
    return 5


def test_small_jobs_and_explicit_backends_keep_the_query_encoder(embedder: Embedder) -> None:
    assert embedder.chunk_encoder(embedding.BULK_MIN_CHUNKS - 1) is embedder.encoder
    explicit = Embedder(backend="onnx", cache_dir=embedder.cache_dir)
    assert explicit.chunk_encoder(10 * embedding.BULK_MIN_CHUNKS) is explicit.encoder
    assert explicit._model is None  # the torch model was never loaded for it


@pytest.mark.skipif(not NATIVE_BF16, reason="this CPU has no native bfloat16 instructions")
def test_a_large_job_is_embedded_with_bf16_and_searched_with_onnx(
    tmp_path: Path, embedder: Embedder, small_bulk_threshold: int
) -> None:
    auto = Embedder(cache_dir=embedder.cache_dir)
    bulk = auto.chunk_encoder(small_bulk_threshold)
    assert bulk.backend == "torch-bf16" and auto.backend == "onnx"
    assert auto.check_min_cosine is not None and MIN_COSINE <= auto.check_min_cosine < 1.0
    assert auto.chunk_encoder(10 * small_bulk_threshold) is bulk  # loaded and checked once

    bf16_index = DocumentIndex.open(make_settings(tmp_path / "bf16"), embedder=auto)
    report = bf16_index.add_paths([SAMPLE_DIR])
    assert report.ok and report.embedded_with == "torch-bf16" and report.chunks_embedded >= small_bulk_threshold

    onnx_index = DocumentIndex.open(make_settings(tmp_path / "onnx"), embedder=Embedder(backend="onnx"))
    assert onnx_index.add_paths([SAMPLE_DIR]).embedded_with == "onnx"
    ids = sorted(bf16_index.chunk_ids())
    assert ids == sorted(onnx_index.chunk_ids())
    got, want = bf16_index.store.chunk_vectors(ids), onnx_index.store.chunk_vectors(ids)
    assert min(float(np.dot(got[i][0], want[i][0])) for i in ids) >= MIN_COSINE
    for i in ids:  # the sentence vectors the answerer ranks with, from the same forward pass
        got_s = decode_vectors(got[i][1]["sentence_vectors"], auto.dim).astype(np.float32)
        want_s = decode_vectors(want[i][1]["sentence_vectors"], auto.dim).astype(np.float32)
        cosines = np.sum(got_s * want_s, axis=1) / np.linalg.norm(got_s, axis=1) / np.linalg.norm(want_s, axis=1)
        assert cosines.min() >= MIN_COSINE
    question = auto.embed_queries(["Who controls Abu Kamal?"])[0]
    top3 = [c for c, _ in bf16_index.dense_search(question, k=3)]
    assert top3 == [c for c, _ in onnx_index.dense_search(question, k=3)]


@pytest.mark.skipif(NATIVE_BF16, reason="this CPU has native bfloat16 instructions")
def test_without_native_bf16_a_large_job_stays_on_onnx_and_says_why(
    embedder: Embedder, small_bulk_threshold: int
) -> None:
    auto = Embedder(cache_dir=embedder.cache_dir)
    assert auto.chunk_encoder(small_bulk_threshold) is auto.encoder
    assert "native bfloat16" in auto.bulk_notice
