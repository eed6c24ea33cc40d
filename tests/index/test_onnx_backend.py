"""ONNX Runtime and torch give the same vectors; the ONNX file is checked, cached and re-made when damaged;
the opt-in int8 and bf16 backends stay within their bounds and keep rankings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SAMPLE_DIR

from index.chunking import chunk_document
from index.embedding import BF16_MIN_COSINE, Embedder, file_sha256, resolve_model
from index.encoders import bf16_unsupported
from index.errors import ConfigError, ModelError
from index.loaders import load_paths
from index.onnx_export import INT8_MIN_COSINE, MIN_COSINE, default_cache_dir, onnx_file, read_record
from index.settings import BUNDLED_MODEL, get_settings

QUESTIONS = [
    "Who controls Abu Kamal?",
    "When did ISIS retake Boukamal?",
    "Where is Al-Bagdadi?",
    "How many fighters were killed?",
    "x",
]


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def sample_vectors(embedder: Embedder) -> tuple[np.ndarray, np.ndarray]:
    """Chunk vectors and sentence vectors (rows) of the sample corpus, as indexing computes them."""
    docs = load_paths([SAMPLE_DIR]).documents
    chunks = [c for doc in docs for c in chunk_document(doc, chunk_size=800, overlap=150)]
    spans = [[(s - c.start, e - c.start) for s, e in c.sentences] for c in chunks]
    vectors = embedder.embed_chunks([c.text for c in chunks], spans)
    return np.stack([v.chunk for v in vectors]), np.concatenate([v.sentences for v in vectors])


def assert_close_with_same_rankings(reference: Embedder, candidate: Embedder, min_cosine: float) -> None:
    """Chunk, sentence and query vectors within ``min_cosine``; each question's best 3 chunks in the same order."""
    want_chunks, want_sentences = sample_vectors(reference)
    got_chunks, got_sentences = sample_vectors(candidate)
    questions = QUESTIONS[:-1]
    want_q, got_q = reference.embed_queries(questions), candidate.embed_queries(questions)
    assert len(want_chunks) > 5 and len(want_sentences) > 20
    assert rowwise_cosine(want_chunks, got_chunks).min() >= min_cosine
    assert rowwise_cosine(want_sentences, got_sentences).min() >= min_cosine
    assert rowwise_cosine(want_q, got_q).min() >= min_cosine
    want_rank = np.argsort(-(want_q @ want_chunks.T), axis=1)[:, :3]
    got_rank = np.argsort(-(got_q @ got_chunks.T), axis=1)[:, :3]
    assert (want_rank == got_rank).all()


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


@pytest.fixture(scope="module")
def onnx_embedder() -> Embedder:
    return Embedder(backend="onnx")


@pytest.fixture(scope="module")
def int8_embedder() -> Embedder:
    return Embedder(backend="onnx-int8")


@pytest.fixture()
def cache_copy(onnx_embedder: Embedder, tmp_path: Path) -> Path:
    """A private copy of the export cache that a test may damage."""
    source = onnx_file(onnx_embedder.cache_dir, onnx_embedder.weights_sha256)
    target = onnx_file(tmp_path, onnx_embedder.weights_sha256)
    target.parent.mkdir(parents=True)
    shutil.copy(source, target)
    shutil.copy(source.with_suffix(".json"), target.with_suffix(".json"))
    return tmp_path


def test_auto_picks_onnx_on_the_cpu_when_its_export_checks_out(embedder: Embedder) -> None:
    assert embedder.backend == "onnx" and embedder.encoder.device == "cpu"
    record = read_record(onnx_file(embedder.cache_dir, embedder.weights_sha256))
    assert record is not None and record.passed and record.min_cosine >= MIN_COSINE


def test_onnx_and_torch_give_the_same_chunk_sentence_and_query_vectors(
    torch_embedder: Embedder, onnx_embedder: Embedder
) -> None:
    assert (torch_embedder.backend, onnx_embedder.backend) == ("torch", "onnx")
    want_chunks, want_sentences = sample_vectors(torch_embedder)
    got_chunks, got_sentences = sample_vectors(onnx_embedder)
    query_cos = rowwise_cosine(torch_embedder.embed_queries(QUESTIONS), onnx_embedder.embed_queries(QUESTIONS))
    assert len(want_chunks) > 5 and len(want_sentences) > 20
    assert rowwise_cosine(want_chunks, got_chunks).min() >= MIN_COSINE
    assert rowwise_cosine(want_sentences, got_sentences).min() >= MIN_COSINE
    assert query_cos.min() >= MIN_COSINE
    words = ["died", "killed", "Boukamal"]
    np.testing.assert_allclose(torch_embedder.word_vectors(words), onnx_embedder.word_vectors(words), atol=1e-6)


def test_the_opt_in_int8_file_is_checked_and_keeps_vectors_and_rankings(
    torch_embedder: Embedder, int8_embedder: Embedder
) -> None:
    assert int8_embedder.backend == "onnx-int8"
    path = onnx_file(int8_embedder.cache_dir, int8_embedder.weights_sha256, int8=True)
    record = read_record(path)
    assert record is not None and record.passed and "MatMulNBits" in record.exporter
    assert INT8_MIN_COSINE <= record.min_cosine < MIN_COSINE  # really quantized, and within its bound
    assert file_sha256(path) == record.onnx_sha256
    assert_close_with_same_rankings(torch_embedder, int8_embedder, INT8_MIN_COSINE)


@pytest.mark.skipif(bf16_unsupported("cpu") is not None, reason="this CPU has no native bfloat16 instructions")
def test_the_opt_in_bf16_backend_is_checked_at_load_and_keeps_vectors_and_rankings(
    torch_embedder: Embedder, tmp_path: Path
) -> None:
    bf16 = Embedder.from_settings(get_settings(embedding_backend="torch-bf16", model_cache=tmp_path))
    assert bf16.backend == "torch-bf16" and bf16.encoder.device == "cpu"
    assert bf16.check_min_cosine is not None and BF16_MIN_COSINE <= bf16.check_min_cosine < 1.0
    assert not any(tmp_path.rglob("*.onnx"))  # runs the torch model itself: nothing is exported
    assert_close_with_same_rankings(torch_embedder, bf16, BF16_MIN_COSINE)


def test_an_int8_file_that_failed_its_check_is_refused(cache_copy: Path, int8_embedder: Embedder) -> None:
    source = onnx_file(int8_embedder.cache_dir, int8_embedder.weights_sha256, int8=True)
    target = onnx_file(cache_copy, int8_embedder.weights_sha256, int8=True)
    shutil.copy(source, target)
    record = json.loads(source.with_suffix(".json").read_text())
    target.with_suffix(".json").write_text(json.dumps({**record, "passed": False, "min_cosine": 0.9}))
    with pytest.raises(ModelError, match=r"int8 file .* does not reproduce the torch vectors \(smallest cosine 0.9"):
        Embedder(backend="onnx-int8", cache_dir=cache_copy)
    assert Embedder(cache_dir=cache_copy).backend == "onnx"  # auto never picks the opt-in file


def test_the_onnx_path_never_loads_torch_weights(onnx_embedder: Embedder) -> None:
    fresh = Embedder(backend="onnx", cache_dir=onnx_embedder.cache_dir)
    fresh.embed_queries(["Who controls Abu Kamal?"])
    fresh.word_vectors(["town"])
    assert fresh._model is None  # the cached, checked export is enough


def test_a_damaged_export_is_made_again_and_matches_its_record(cache_copy: Path, onnx_embedder: Embedder) -> None:
    path = onnx_file(cache_copy, onnx_embedder.weights_sha256)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    embedder = Embedder(backend="onnx", cache_dir=cache_copy)
    record = read_record(path)
    assert record is not None and record.passed
    assert file_sha256(path) == record.onnx_sha256
    np.testing.assert_allclose(
        embedder.embed_queries(QUESTIONS), onnx_embedder.embed_queries(QUESTIONS), atol=1e-5
    )


def test_an_export_that_failed_its_check_is_refused_or_replaced_by_torch(
    cache_copy: Path, onnx_embedder: Embedder
) -> None:
    sidecar = onnx_file(cache_copy, onnx_embedder.weights_sha256).with_suffix(".json")
    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**record, "passed": False, "min_cosine": 0.94}))
    with pytest.raises(ModelError, match="does not reproduce the torch vectors"):
        Embedder(backend="onnx", cache_dir=cache_copy)
    fallback = Embedder(cache_dir=cache_copy)
    assert fallback.backend == "torch" and "0.94" in fallback.backend_notice


def test_a_model_the_onnx_path_cannot_reproduce_stays_on_torch(tmp_path: Path) -> None:
    source, _ = resolve_model(BUNDLED_MODEL)
    model = tmp_path / "cls-pooling"
    shutil.copytree(source, model)
    config = model / "1_Pooling" / "config.json"
    pooling = json.loads(config.read_text())
    config.write_text(json.dumps({**pooling, "pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    with pytest.raises(ModelError, match="plain mean pooling"):
        Embedder(str(model), backend="onnx", cache_dir=tmp_path / "cache")
    auto = Embedder(str(model), cache_dir=tmp_path / "cache")
    assert auto.backend == "torch" and "mean pooling" in auto.backend_notice
    assert not (tmp_path / "cache").exists()  # nothing exported for it


def test_bad_backend_and_device_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="CITEQA_EMBEDDING_BACKEND"):
        get_settings(embedding_backend="tensorrt")
    with pytest.raises(ConfigError, match="CITEQA_EMBEDDING_DEVICE"):
        get_settings(embedding_device="tpu")
    with pytest.raises(ModelError, match="unknown embedding backend"):
        Embedder(backend="tensorrt")


def test_asking_for_cuda_without_a_gpu_says_so() -> None:
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelError, match="sees no CUDA device"):
        Embedder(device="cuda")


def test_the_default_cache_is_under_the_users_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "citeqa"

