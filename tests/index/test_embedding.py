"""The real bundled model: deterministic, meaningful, verified at load, and tied to its index."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE, SAMPLE_DIR, make_settings

from index.chunking import chunk_document
from index.embedding import BUNDLED_SHA256, Embedder, resolve_model
from index.errors import ModelError
from index.loaders import load_paths
from index.models import Document
from index.pipeline import DocumentIndex
from index.settings import BUNDLED_MODEL

RETAKE_SENTENCE = (
    "But the disbanded withdrawal of the ISIS in Abu Kamal, the last city of Syria in its power, "
    "turned out to be just a ruse."
)
DEFEAT_SENTENCE = (
    "The battle for Boukamal, on the border with Iraq, featured its share of feints and ruses, with the "
    "militants pulling out of the town ten days ago only to attack it again and threaten to trap "
    "pro-government forces inside."
)
UNRELATED = [
    "Whisk the eggs with sugar until pale, then fold in the flour and bake for twenty minutes.",
    "The central bank left interest rates unchanged and said inflation was easing.",
    "Our new smartphone has a brighter screen and a battery that lasts two days.",
]


@pytest.fixture(scope="module")
def model_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the bundled model directory that tests may damage (the installed one is never touched)."""
    source, _ = resolve_model(BUNDLED_MODEL)
    target = tmp_path_factory.mktemp("model") / "all-MiniLM-L6-v2"
    shutil.copytree(source, target)
    return target


@pytest.fixture()
def corrupt_copy(model_copy: Path, tmp_path: Path) -> Path:
    target = tmp_path / "corrupt-model"
    shutil.copytree(model_copy, target)
    weights = target / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte deep inside the weights
    weights.write_bytes(bytes(data))
    return target


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_bundled_weights_are_the_ones_we_pinned(embedder: Embedder) -> None:
    assert embedder.weights_sha256 == BUNDLED_SHA256
    assert embedder.dim == 384
    assert embedder.identity == f"{BUNDLED_MODEL}@{BUNDLED_SHA256[:16]}"


def test_same_text_same_vector(embedder: Embedder) -> None:
    first = embedder.embed_queries([RETAKE_SENTENCE])[0]
    again = embedder.embed_queries([RETAKE_SENTENCE])[0]
    assert np.array_equal(first, again)
    in_a_batch = embedder.embed_queries([*UNRELATED, RETAKE_SENTENCE])[-1]
    np.testing.assert_allclose(in_a_batch, first, atol=1e-5)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5


def test_abu_kamal_sentences_of_both_articles_are_closest_to_each_other(embedder: Embedder) -> None:
    retake, defeat, *unrelated = embedder.embed_queries([RETAKE_SENTENCE, DEFEAT_SENTENCE, *UNRELATED])
    together = cosine(retake, defeat)
    for other in unrelated:
        assert together > cosine(retake, other) + 0.2
        assert together > cosine(defeat, other) + 0.2


def test_sentence_vectors_in_the_index_agree(sample_index: DocumentIndex) -> None:
    """The answerer's per-sentence vectors (from the chunk pass) carry the same meaning."""

    def stored_sentence(doc_id: str, sentence: str) -> np.ndarray:
        for cid in sample_index.chunk_ids_matching(lambda c: c.doc_id == doc_id and sentence in c.text):
            chunk = sample_index.chunk(cid)
            assert chunk is not None
            for k, (s, e) in enumerate(chunk.sentences):
                if chunk.text[s - chunk.start : e - chunk.start] == sentence:
                    return chunk.sentence_vectors[k].astype(np.float32)
        raise AssertionError(f"{sentence!r} is not a sentence of {doc_id}")

    retake = stored_sentence(DOC_RETAKE, RETAKE_SENTENCE)
    defeat = stored_sentence(DOC_DEFEAT, DEFEAT_SENTENCE)
    unrelated = sample_index.embedder.embed_queries(UNRELATED)
    assert all(cosine(retake, defeat) > cosine(retake, u) for u in unrelated)
    alone = sample_index.embedder.embed_queries([RETAKE_SENTENCE])[0]
    assert cosine(retake, alone) > 0.8  # in context, but still the same sentence


def test_chunk_vectors_equal_sentence_transformers_encode(embedder: Embedder) -> None:
    docs = load_paths([SAMPLE_DIR]).documents
    chunks = [c for doc in docs for c in chunk_document(doc, chunk_size=400, overlap=100)]
    embedded = embedder.embed_chunks(
        [c.text for c in chunks], [[(s - c.start, e - c.start) for s, e in c.sentences] for c in chunks]
    )
    reference = embedder.model.encode(
        [c.text for c in chunks], batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    assert len(embedded) == len(chunks)
    for chunk, got, want in zip(chunks, embedded, reference, strict=True):
        np.testing.assert_allclose(got.chunk, want, atol=1e-4)
        assert got.sentences.shape == (len(chunk.sentences), embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(got.sentences, axis=1), 1.0, atol=1e-5)


def test_token_counts_are_what_the_model_sees(embedder: Embedder) -> None:
    # chunks are batched by these counts, so they must be the model's own: special tokens in, cut at the limit
    texts = [RETAKE_SENTENCE, "", "Boukamal 2017", " ".join(f"Item {i} was counted." for i in range(150))]
    encoded = embedder.model.tokenizer(texts, truncation=True, max_length=embedder.max_tokens)
    want = [len(ids) for ids in encoded["input_ids"]]
    assert embedder.token_counts(texts) == want
    assert want[-1] == embedder.max_tokens  # the long one is truncated, not counted in full


def test_sentences_past_the_token_limit_still_get_their_own_vector(embedder: Embedder) -> None:
    filler = " ".join(f"Item {i} was counted." for i in range(150))  # far more than 256 tokens
    last = "The harbour bridge reopened to traffic on Friday."
    text = f"{filler} {last}"
    spans = [(len(filler) + 1, len(text))]
    (result,) = embedder.embed_chunks([text], [spans])
    alone = embedder.embed_queries([last])[0]
    np.testing.assert_allclose(result.sentences[0], alone, atol=1e-5)


def test_corrupt_model_weights_are_refused(corrupt_copy: Path) -> None:
    with pytest.raises(ModelError, match="sha256") as err:
        Embedder(str(corrupt_copy), expected_sha256=BUNDLED_SHA256)
    assert "corrupt or replaced" in str(err.value)
    assert str(corrupt_copy / "model.safetensors") in str(err.value)


def test_corrupt_model_named_in_settings_stops_the_index_from_opening(corrupt_copy: Path, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "idx", embedding_model=str(corrupt_copy), embedding_sha256=BUNDLED_SHA256)
    with pytest.raises(ModelError, match="sha256"):
        DocumentIndex.open(settings)


def test_missing_weights_and_missing_model_are_clear_errors(model_copy: Path, tmp_path: Path) -> None:
    empty = tmp_path / "no-weights"
    empty.mkdir()
    with pytest.raises(ModelError, match="missing"):
        Embedder(str(empty), expected_sha256=BUNDLED_SHA256)
    with pytest.raises(ModelError, match="never downloads"):
        Embedder("sentence-transformers/all-MiniLM-L6-v2")


def test_an_index_built_with_one_model_refuses_another(
    model_copy: Path, embedder: Embedder, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "idx")
    index = DocumentIndex.open(settings, embedder=embedder)
    assert index.add_documents([Document(id="d", title="t", text=RETAKE_SENTENCE)]).added == ["d"]

    other = Embedder(str(model_copy))  # same weights, loaded from a path: another identity
    assert other.identity != embedder.identity
    with pytest.raises(ModelError) as err:
        DocumentIndex.open(settings, embedder=other)
    message = str(err.value)
    assert embedder.identity in message and other.identity in message
    assert "CITEQA_COLLECTION" in message

    # the refused open changed nothing: the original model still reads its index
    again = DocumentIndex.open(settings, embedder=embedder)
    assert [d.id for d in again.list_documents()] == ["d"]


def test_identity_does_not_depend_on_the_case_of_the_configured_hash(model_copy: Path) -> None:
    lower = Embedder(str(model_copy), expected_sha256=BUNDLED_SHA256)
    upper = Embedder(str(model_copy), expected_sha256=BUNDLED_SHA256.upper())
    unchecked = Embedder(str(model_copy))
    assert lower.identity == upper.identity == unchecked.identity


def test_commands_that_never_embed_open_the_index_without_loading_the_model(
    sample_index: DocumentIndex, embedder: Embedder
) -> None:
    index = DocumentIndex.open(sample_index.settings, load_model=False)
    lazy = index.embedder
    assert lazy._encoder is None  # listing, statistics and deletes need no forward pass
    assert lazy.dim == embedder.dim and lazy.identity == embedder.identity
    assert {d.id for d in index.list_documents()} == {DOC_RETAKE, DOC_DEFEAT}
    assert index.stats().chunks == sample_index.stats().chunks
    # The first embedding loads it, and gives what the eagerly loaded model gives.
    np.testing.assert_allclose(lazy.embed_queries(["Abu Kamal"]), embedder.embed_queries(["Abu Kamal"]), atol=1e-6)
    assert lazy._encoder is not None


def test_a_lazily_opened_model_with_corrupt_weights_is_still_refused(corrupt_copy: Path) -> None:
    with pytest.raises(ModelError, match="sha256"):
        Embedder(str(corrupt_copy), expected_sha256=BUNDLED_SHA256, load=False)
