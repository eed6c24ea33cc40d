"""Benchmark: the embedding model's forward pass alone, torch against ONNX Runtime files, one run.

    python -m eval.bench_quant [--beir ../shared/data/scifact] [--texts 1000] [--batch-size 16]
                               [--variants torch,onnx,onnx-int8,torch-bf16,mixed-int8,dynamic-int8] [--out FILE]

The texts are SciFact chunks as citeqa's chunker cuts them (the corpus in file order, until
``--texts``), embedded longest-last in batches as the pipeline does. For each variant it prints wall
and CPU seconds, texts per second, the speed-up against torch measured in the same run, and the
cosine of its pooled vectors to torch's (mean and minimum). It answers one question of issue 10:
which forward pass, if any, reaches 1.6x torch on this machine, and at what cost in the vectors.

Variants (the ONNX ones from the checked fp32 export in ``CITEQA_MODEL_CACHE``):

- ``torch``: sentence-transformers on torch (the reference).
- ``onnx``: citeqa's default, the fp32 export with ONNX Runtime's fused attention.
- ``onnx-int8``: citeqa's opt-in file, 8-bit MatMulNBits weights in blocks of 128.
- ``torch-bf16``: citeqa's opt-in torch backend under bfloat16 autocast (CPUs with native bf16).
- ``mixed-int8``: not offered by citeqa. Dynamic int8 with per-tensor activation scales for the fused
  attention (QAttention), the FFN input and the attention output; MatMulNBits for the FFN output,
  whose GELU-tailed input per-tensor scales handle worst.
- ``dynamic-int8``: not offered either. ONNX Runtime's ``quantize_dynamic`` on every MatMul and the
  attention, per-channel int8 weights and per-tensor activations.

Only the forward pass is timed: the pipeline around it (chunking, sentence vectors, Chroma, BM25) is
about 5% of indexing (eval/README.md), so these ratios carry over to ``citeqa index add``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench_qa import DEFAULT_BEIR
from index.chunking import chunk_document
from index.embedding import Embedder, file_sha256
from index.encoders import Encoder, OnnxEncoder, TorchEncoder
from index.models import Document
from index.onnx_export import exported_model, nbits_int8
from index.settings import DEFAULT_EMBEDDING_BATCH_SIZE, Settings, get_settings

VARIANTS = ("torch", "onnx", "onnx-int8", "torch-bf16", "mixed-int8", "dynamic-int8")


def chunk_texts(beir: Path, count: int) -> list[str]:
    """The first ``count`` chunks of the corpus, as the pipeline cuts them (title, blank line, text)."""
    settings = get_settings()
    texts: list[str] = []
    with (beir / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            text = f"{record.get('title', '')}\n\n{record['text']}".strip()
            doc = Document(id=str(record["_id"]), text=text, title=record.get("title") or "")
            for chunk in chunk_document(doc, chunk_size=settings.chunk_size, overlap=settings.chunk_overlap):
                texts.append(chunk.text)
            if len(texts) >= count:
                return texts[:count]
    return texts


def _dynamic(source: Path, target: Path, *, node_filter: Callable[[Any], bool]) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    nodes = [n.name for n in onnx.load(str(source)).graph.node if node_filter(n)]
    quantize_dynamic(
        str(source),
        str(target),
        nodes_to_quantize=nodes,
        op_types_to_quantize=["Attention", "MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def make_variant(name: str, fp32: Path, workdir: Path) -> Path:
    """Write the ONNX file of a variant that citeqa does not ship (from the fp32 export)."""
    import onnx

    target = workdir / f"{name}.onnx"
    if name == "dynamic-int8":
        _dynamic(fp32, target, node_filter=lambda n: n.op_type in ("Attention", "MatMul"))
    elif name == "mixed-int8":
        staged = workdir / "mixed-stage.onnx"
        _dynamic(
            fp32,
            staged,
            node_filter=lambda n: n.op_type == "Attention"
            or (n.op_type == "MatMul" and ("intermediate/dense" in n.name or "attention/output/dense" in n.name)),
        )
        onnx.save(nbits_int8(onnx.load(str(staged))).model, str(target))
    else:
        raise ValueError(f"unknown variant {name!r}; use one of {', '.join(VARIANTS)}")
    return target


def int8_encoder(settings: Settings) -> Encoder:
    return Embedder.from_settings(settings.model_copy(update={"embedding_backend": "onnx-int8"})).encoder


def variant_encoder(name: str, fp32: Path, workdir: Path, model_path: Path) -> Encoder:
    return OnnxEncoder(make_variant(name, fp32, workdir), model_path)


def encoders(names: list[str], workdir: Path) -> dict[str, Callable[[], Encoder]]:
    """A builder per variant (built one at a time, so only one model is in memory)."""
    settings = get_settings()
    embedder = Embedder.from_settings(settings.model_copy(update={"embedding_backend": "onnx"}))
    fp32, _ = exported_model(
        embedder.path,
        embedder.weights_sha256,
        cache_dir=embedder.cache_dir,
        load_torch=lambda: embedder.model,
        file_sha256=file_sha256,
    )
    builders: dict[str, Callable[[], Encoder]] = {}
    for name in names:
        if name == "torch":
            builders[name] = lambda: TorchEncoder(embedder.model, device="cpu")
        elif name == "onnx":
            builders[name] = lambda: OnnxEncoder(fp32, embedder.path)
        elif name == "torch-bf16":
            builders[name] = lambda: TorchEncoder(embedder.model, device="cpu", bf16=True)  # the same weights
        elif name == "onnx-int8":
            builders[name] = partial(int8_encoder, settings)
        else:
            builders[name] = partial(variant_encoder, name, fp32, workdir, embedder.path)
    return builders


def run(encoder: Encoder, texts: list[str], batch_size: int) -> tuple[float, float, np.ndarray]:
    """Wall seconds, CPU seconds and the normalized pooled vectors (in ``texts`` order)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    encoder.encode(texts[:4])  # warm-up
    out = np.zeros((len(texts), 384), dtype=np.float32)
    wall, cpu = time.perf_counter(), time.process_time()
    for lo in range(0, len(order), batch_size):
        batch = order[lo : lo + batch_size]
        out[batch] = encoder.encode([texts[i] for i in batch]).pooled
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beir", type=Path, default=DEFAULT_BEIR)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_EMBEDDING_BATCH_SIZE)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    if "torch" not in names:
        names.insert(0, "torch")  # the reference every ratio and cosine is taken against
    names.sort(key=lambda n: n != "torch")
    logging.disable(logging.INFO)  # the quantizers log every node
    texts = chunk_texts(args.beir, args.texts)
    print(f"{len(texts)} SciFact chunks, batch {args.batch_size}, load average {os.getloadavg()[0]:.1f}")
    rows: list[dict[str, Any]] = []
    reference: np.ndarray | None = None
    with tempfile.TemporaryDirectory(prefix="citeqa-quant-") as tmp:
        for name, build in encoders(names, Path(tmp)).items():
            wall, cpu, vectors = run(build(), texts, args.batch_size)
            if reference is None:
                reference = vectors
            cosine = (vectors * reference).sum(axis=1)
            rows.append(
                {
                    "variant": name,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "texts_per_s": round(len(texts) / wall, 1),
                    "vs_torch": round(rows[0]["wall_s"] / wall, 2) if rows else 1.0,
                    "cosine_mean": round(float(cosine.mean()), 5),
                    "cosine_min": round(float(cosine.min()), 5),
                }
            )
            print("  ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
