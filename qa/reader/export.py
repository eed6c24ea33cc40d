"""Turn a training run into shippable ONNX files: fp32 (re-exported from ``reader.pt``) and int8.

    python -m qa.reader.export --run /work/reader-run/main

Writes ``reader.onnx`` (fp32; re-exported only when missing or with ``--reexport``: training already
writes it) and ``reader-int8.onnx`` (dynamic int8 quantization of the MatMul and
Gather weights) into the run directory and prints their sha256. Which one ships is decided by
``python -m eval.bench_reader --model ...`` (int8 only if F1 does not drop).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantization of an fp32 ONNX reader.

    Args:
        src: the fp32 model.
        dst: where to write the int8 model.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)


def main(argv: list[str] | None = None) -> None:
    """Command line: re-export fp32 from the run's checkpoint, then quantize it."""
    import torch
    from transformers import AutoModel

    from qa.reader.data import file_sha256
    from qa.reader.train import SpanReader, base_model_path, export_onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the training output directory")
    parser.add_argument("--reexport", action="store_true", help="export fp32 again from reader.pt")
    args = parser.parse_args(argv)
    if args.reexport or not (args.run / "reader.onnx").is_file():
        torch.set_num_threads(2)
        encoder = AutoModel.from_pretrained(
            str(base_model_path()), attn_implementation="eager", add_pooling_layer=False
        )
        model = SpanReader(encoder, encoder.config.hidden_size)
        model.load_state_dict(torch.load(args.run / "reader.pt", weights_only=True))
        export_onnx(model, args.run / "reader.onnx")
    quantize_int8(args.run / "reader.onnx", args.run / "reader-int8.onnx")
    for name in ("reader.onnx", "reader-int8.onnx"):
        path = args.run / name
        print(f"{path}  {path.stat().st_size / 1e6:.1f} MB  sha256 {file_sha256(path)}")


if __name__ == "__main__":
    main()
