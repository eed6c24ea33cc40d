"""Export the embedding model to ONNX once, check it against torch, and cache it with its hash.

The export runs offline from the verified ``model.safetensors`` (``torch.onnx.export`` of the
transformer with eager attention, then ONNX Runtime's BERT optimizer, which fuses attention,
layer norms and GELU), on first use or ahead of time with ``citeqa model``. Before the file is used
it must reproduce the torch vectors on :data:`CHECK_TEXTS` (every pooled vector and every token
vector at cosine >= :data:`MIN_COSINE`). The file's sha256, the weights it came from and the
check's result are recorded beside it; a later start re-hashes the file and re-exports when it no
longer matches.

The opt-in int8 variant (``CITEQA_EMBEDDING_BACKEND=onnx-int8``) is made from that checked file,
on its first use, by ONNX Runtime's weight-only quantizer: every MatMul becomes MatMulNBits with
8-bit weights in blocks of :data:`INT8_BLOCK`, computed with int8 activations quantized per block
(``accuracy_level`` 4); the fused attention stays fp32. It must stay within
:data:`INT8_MIN_COSINE` of torch on the same check texts. ``auto`` never picks it: it is faster,
but not the same vectors, and it moved one RGB case (eval/README.md, "Embedding backends").
Per-tensor dynamic quantization (the usual ``quantize_dynamic``) is not offered: its activation
scales cost more accuracy.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.encoders import Encoder, OnnxEncoder, TorchEncoder
from index.errors import ModelError
from index.locking import dir_lock

log = logging.getLogger(__name__)

MIN_COSINE = 0.9999
INT8_MIN_COSINE = 0.995  # pooled and token vectors; measured 0.998 on the check texts, 0.9975 on SciFact chunks
INT8_BLOCK = 128
OPSET = 17
FORMAT = 2  # bump when the exported graph changes (2: eager attention, fused by ORT's optimizer)

# Short and long, questions and prose, digits, accents, and one text past the 256-token limit.
CHECK_TEXTS = [
    "Who controls the town now?",
    "x",
    "ISIS fighters retook the Syrian border town of Abu Kamal on Thursday, a monitoring group said.",
    "The bridge toll is four crowns for cars and one crown for bicycles; lorries pay by the axle.",
    "Al-Baghdadi's whereabouts remain unknown, según fuentes locales, après la chute de Raqqa.",
    "In 2017, 1,250 people were displaced; by March 2018 the figure had risen to 3,400 (UNHCR).",
    "Vitamin D supplementation did not reduce the incidence of fractures in older adults.",
    "How many crowns does a car pay?",
    " ".join(f"Item {i} was counted on day {i % 7} at the northern depot." for i in range(60)),
]


@dataclass(frozen=True)
class ExportRecord:
    """What the sidecar JSON says about one exported file."""

    onnx_sha256: str
    weights_sha256: str
    min_cosine: float
    passed: bool
    exporter: str
    seconds: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/citeqa`` (``~/.cache/citeqa``): exported files are derived data, safe to delete."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "citeqa"


def onnx_file(cache_dir: Path, weights_sha256: str, *, int8: bool = False) -> Path:
    """Where the export (or its int8 variant) of these weights is cached."""
    return cache_dir / "onnx" / f"embedding-{weights_sha256[:16]}-v{FORMAT}{'-int8' if int8 else ''}.onnx"


def read_record(path: Path) -> ExportRecord | None:
    try:
        data = json.loads(path.with_suffix(".json").read_text())
        return ExportRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def compare(reference: TorchEncoder, candidate: Encoder, texts: list[str] | None = None) -> float:
    """The smallest cosine between the two encoders' pooled vectors and real-token vectors."""
    texts = texts or CHECK_TEXTS
    want, got = reference.encode(texts), candidate.encode(texts)
    if want.tokens.shape != got.tokens.shape or not np.array_equal(want.mask, got.mask):
        return -1.0  # the tokenizers disagree: not the same model
    worst = float(np.min(np.sum(want.pooled * got.pooled, axis=1)))
    a, b = want.tokens[want.mask], got.tokens[got.mask]
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return min(worst, float(cos.min()))


def _export(model: Any, path: Path) -> None:
    """``torch.onnx.export`` of the transformer inside a sentence-transformers model (token vectors out)."""
    import torch

    transformer = model[0].auto_model
    previous = transformer.config._attn_implementation
    # eager attention exports as the MatMul/Softmax pattern ORT's optimizer fuses into one Attention
    # op (SDPA exports as a graph it does not recognise, about 15% slower)
    transformer.set_attn_implementation("eager")

    class TokenVectors(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.last_hidden_state

    # padded rows in the example, so the traced graph keeps a real attention mask
    example = model.tokenizer(["an example sentence to trace", "short"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]}
    # The tracer warns about Python-level branches it freezes (padding checks that never apply to an
    # encoder); the cosine check after the export is what decides whether the file is right.
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                TokenVectors(transformer.cpu()).eval(),
                tuple(example[name] for name in names),
                str(path),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    finally:
        transformer.set_attn_implementation(previous)
    _fuse(path, transformer.config)


def _fuse(path: Path, config: Any) -> None:
    """ONNX Runtime's BERT graph optimizer, in place (attention, skip layer norm, bias GELU fused).
    A model it does not recognise keeps the plain export: the check decides either way."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = optimize_model(
                str(path),
                model_type="bert",
                num_heads=int(getattr(config, "num_attention_heads", 0)),
                hidden_size=int(getattr(config, "hidden_size", 0)),
                opt_level=1,
            )
            optimized.save_model_to_file(str(path))
    except Exception as exc:  # the optimizer raises whatever its pattern matchers hit
        log.warning("ONNX Runtime's optimizer could not fuse %s (%s); using the plain export", path.name, exc)


def exported_model(
    model_path: Path,
    weights_sha256: str,
    *,
    cache_dir: Path,
    load_torch: Callable[[], Any],
    file_sha256: Callable[[Path], str],
    int8: bool = False,
) -> tuple[Path, ExportRecord]:
    """The checked ONNX file for these weights, exporting (and quantizing) it first if the cache has none.

    Args:
        model_path: the verified sentence-transformers directory.
        weights_sha256: its weights' hash (names the cached file).
        cache_dir: where exports live (``CITEQA_MODEL_CACHE``).
        load_torch: loads the torch model, only called when an export is needed.
        file_sha256: the hash function used for the record.
        int8: the int8 variant, quantized from the checked fp32 file.

    Returns:
        the file and its record; ``record.passed`` is False when the file does not reproduce torch
        (within :data:`MIN_COSINE`, or :data:`INT8_MIN_COSINE` for int8).

    Raises:
        ModelError: the export itself failed (the ``onnx`` package missing, an unexportable model),
            or int8 was asked for and the fp32 export it is made from failed its check.
    """
    path = onnx_file(cache_dir, weights_sha256, int8=int8)
    record = read_record(path)
    if _still_valid(path, record, weights_sha256, file_sha256):
        assert record is not None
        return path, record
    source: Path | None = None
    if int8:
        source, fp32 = exported_model(
            model_path, weights_sha256, cache_dir=cache_dir, load_torch=load_torch, file_sha256=file_sha256
        )
        if not fp32.passed:
            raise ModelError(f"the fp32 export {source} failed its check; no int8 file is made from it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # two processes starting at once export once: the second waits and then finds the file
    with dir_lock(path.parent, "export.lock").held(timeout=600, purpose="exporting the embedding model"):
        record = read_record(path)
        if _still_valid(path, record, weights_sha256, file_sha256):
            assert record is not None
            return path, record
        return path, _export_and_check(path, model_path, weights_sha256, load_torch, file_sha256, source)


def _still_valid(path: Path, record: ExportRecord | None, weights: str, file_sha256: Callable[[Path], str]) -> bool:
    if record is None or record.weights_sha256 != weights or not path.is_file():
        return False
    if file_sha256(path) != record.onnx_sha256:
        log.warning("%s does not match its recorded sha256; exporting it again", path)
        return False
    return True


def nbits_int8(model: Any) -> Any:
    """The ONNX model (a ModelProto) with every MatMul's weights in 8-bit blocks of :data:`INT8_BLOCK`
    (MatMulNBits, int8 compute); fused attention kept. Returns the quantizer's ONNXModel."""
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    quiet = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # it logs every node at INFO
    try:
        quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=INT8_BLOCK, is_symmetric=True, accuracy_level=4)
        quantizer.process()
        return quantizer.model
    finally:
        quiet.setLevel(level)


def _quantize(source: Path, target: Path) -> None:
    import onnx

    nbits_int8(onnx.load(str(source))).save_model_to_file(str(target), use_external_data_format=False)


def _export_and_check(
    path: Path,
    model_path: Path,
    weights: str,
    load_torch: Callable[[], Any],
    file_sha256: Callable[[Path], str],
    source: Path | None = None,
) -> ExportRecord:
    """Export (or, given the checked fp32 ``source``, quantize) to ``path``, compare with torch, record."""
    import onnxruntime
    import torch

    started = time.perf_counter()
    what = "quantizing the embedding model to int8" if source else "exporting the embedding model to ONNX"
    log.info("%s (once; cached in %s)", what, path.parent)
    model = load_torch()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if source is None:
            _export(model, tmp)
        else:
            _quantize(source, tmp)
    except Exception as exc:  # the exporter raises many types; all mean "no ONNX file"
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{what} failed: {exc}") from exc
    try:
        cosine = compare(TorchEncoder(model), OnnxEncoder(tmp, model_path))
    except ModelError:
        cosine = -1.0
    exporter = f"torch {torch.__version__} opset {OPSET}, onnxruntime {onnxruntime.__version__}"
    record = ExportRecord(
        onnx_sha256=file_sha256(tmp),
        weights_sha256=weights,
        min_cosine=round(cosine, 7),
        passed=cosine >= (INT8_MIN_COSINE if source else MIN_COSINE),
        exporter=exporter + (f", MatMulNBits 8-bit block {INT8_BLOCK}" if source else ""),
        seconds=round(time.perf_counter() - started, 2),
    )
    os.replace(tmp, path)
    sidecar = path.with_suffix(".json")
    tmp_record = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
    tmp_record.write_text(record.to_json())
    os.replace(tmp_record, sidecar)
    log.info("%s done in %.1f s, smallest cosine to torch %.6f", what, record.seconds, cosine)
    return record
