"""The two ways citeqa runs the embedding model's forward pass: ONNX Runtime or torch.

Both take a batch of texts and return, per text, the contextual token vectors (with each token's
character offsets) and the pooled, normalized text vector. :class:`index.embedding.Embedder` builds
chunk, sentence and query vectors from those, so the backend changes speed, never the method.

The ONNX file is exported from the verified weights on first use (see :mod:`index.onnx_export`);
torch stays available as the fallback and as the reference the export is checked against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from index.errors import ModelError


@dataclass(frozen=True)
class EncodedBatch:
    """One forward pass: ``tokens[b, t]`` vectors, ``offsets[b, t]`` = (start, end) characters of
    token t in text b ((0, 0) for special and padding tokens), ``mask[b, t]`` real tokens, and
    ``pooled[b]`` the model's normalized text vector."""

    tokens: np.ndarray
    offsets: np.ndarray
    mask: np.ndarray
    pooled: np.ndarray


class Encoder(Protocol):
    backend: str
    device: str
    max_tokens: int

    def encode(self, texts: Sequence[str]) -> EncodedBatch: ...


def mean_pool(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of the real tokens' vectors, normalized (sentence-transformers' mean pooling + Normalize)."""
    weights = mask.astype(np.float32)[:, :, None]
    summed = (tokens * weights).sum(axis=1)
    pooled = summed / np.maximum(weights.sum(axis=1), 1e-9)
    return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)


def max_seq_length(path: Path, default: int = 256) -> int:
    """The token limit a sentence-transformers directory declares (sentence_bert_config.json)."""
    try:
        return int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def onnx_unsupported(path: Path) -> str | None:
    """Why this model directory cannot run through the ONNX path (None: it can).

    The ONNX path reproduces exactly Transformer -> mean Pooling -> (Normalize); any other head
    (a Dense layer, CLS pooling ...) stays on torch rather than give different vectors.
    """
    try:
        modules = json.loads((path / "modules.json").read_text())
    except (OSError, ValueError):
        return "it has no modules.json"
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling", "Normalize"], ["Transformer", "Pooling"]):
        return f"its modules are {kinds}, and only Transformer, mean Pooling, Normalize are exported"
    try:
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text())
    except (OSError, ValueError, KeyError):
        return "its pooling config is unreadable"
    mean = "pooling_mode_mean_tokens"
    other_modes = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k != mean]
    if not pooling.get("pooling_mode_mean_tokens") or other_modes:
        return "it does not use plain mean pooling"
    if not (path / "tokenizer.json").is_file():
        return "it has no tokenizer.json (a fast tokenizer)"
    if not (path / "model.safetensors").is_file():
        return "it has no model.safetensors"
    return None


def fast_tokenizer(path: Path, max_tokens: int) -> Any:
    """The model's own tokenizer.json, truncating at ``max_tokens`` and padding to the longest text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    pad_id = tokenizer.token_to_id("[PAD]")
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
    return tokenizer


class OnnxEncoder:
    """The exported transformer in an ONNX Runtime session; tokenization by ``tokenizers``, pooling in numpy.

    Args:
        onnx_path: the exported model (already verified against its recorded hash).
        model_path: the sentence-transformers directory it was exported from (tokenizer, limits).
        device: ``cpu`` or ``cuda`` (needs an onnxruntime build with the CUDA provider).
        backend: the name reported for it (``onnx``; benchmarks name their variants, e.g. ``onnx-int8``).
    """

    def __init__(self, onnx_path: Path, model_path: Path, *, device: str = "cpu", backend: str = "onnx") -> None:
        self.backend = backend
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError(
                    "CITEQA_EMBEDDING_DEVICE=cuda with the onnx backend needs onnxruntime-gpu; "
                    "use CITEQA_EMBEDDING_BACKEND=torch for the GPU"
                )
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise ModelError(f"ONNX Runtime cannot load {onnx_path}: {exc}") from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.device = device
        self.max_tokens = max_seq_length(model_path)
        self.tokenizer = fast_tokenizer(model_path, self.max_tokens)

    def encode(self, texts: Sequence[str]) -> EncodedBatch:
        encodings = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        offsets = np.array([e.offsets for e in encodings], dtype=np.int64)
        special = np.array([e.special_tokens_mask for e in encodings], dtype=bool)
        offsets[special] = 0  # as transformers reports them: (0, 0) for [CLS], [SEP], [PAD]
        (tokens,) = self._session.run(["token_embeddings"], feed)
        return EncodedBatch(tokens=tokens, offsets=offsets, mask=mask.astype(bool), pooled=mean_pool(tokens, mask))


class TorchEncoder:
    """The sentence-transformers model itself (any architecture it can load), on CPU or CUDA.

    With ``bf16`` the forward pass runs under torch's bfloat16 autocast: matrix products in bf16
    with fp32 accumulation, layer norms and softmax in fp32, fp32 weights and outputs. On a CPU with
    native bf16 instructions that is about 1.75x the fp32 pass (see :func:`bf16_unsupported`).
    """

    def __init__(self, model: Any, *, device: str = "cpu", bf16: bool = False) -> None:
        self.model = model
        self.device = device
        self.bf16 = bf16
        self.backend = "torch-bf16" if bf16 else "torch"
        self.max_tokens = int(model.max_seq_length or 256)

    def encode(self, texts: Sequence[str]) -> EncodedBatch:
        import torch

        enc = self.model.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_tokens,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        offsets = enc.pop("offset_mapping").numpy()
        with torch.inference_mode(), torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model({k: v.to(self.device) for k, v in enc.items()})
        tokens = out["token_embeddings"].float().cpu().numpy()
        pooled = out["sentence_embedding"].float().cpu().numpy()
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        mask = enc["attention_mask"].numpy().astype(bool)
        return EncodedBatch(tokens=tokens, offsets=offsets, mask=mask, pooled=pooled)


def bf16_unsupported(device: str) -> str | None:
    """Why bfloat16 autocast would not speed up this device (None: it would).

    Without native bf16 instructions (AVX512-BF16 or AMX on x86) oneDNN emulates bf16, which is
    slower than fp32, so the backend refuses rather than silently slow indexing down.
    """
    import torch

    if device == "cuda":
        return None if torch.cuda.is_bf16_supported() else "this GPU has no bfloat16 support"
    if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return "this CPU has no native bfloat16 instructions (AVX512-BF16 or AMX)"
    return None
