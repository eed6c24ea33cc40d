"""SQuAD 2.0-format training data for the reader: questions, the held-out split, token windows.

No torch here, so benchmarks can read the held-out split without loading the training stack.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """Return the hex sha256 of a file.

    Args:
        path: the file.

    Returns:
        The lowercase hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_held_out(title: str, percent: int) -> bool:
    """Whether an article is in the held-out split (by title hash, so the split never drifts).

    Args:
        title: the SQuAD article title.
        percent: how many percent of articles to hold out.

    Returns:
        True for the held-out articles.
    """
    return int(hashlib.sha256(title.encode("utf-8")).hexdigest()[:8], 16) % 100 < percent


def load_examples(data_path: Path, *, holdout_percent: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Flatten a SQuAD 2.0 file into (train, held-out) question lists.

    Args:
        data_path: the SQuAD 2.0 JSON file.
        holdout_percent: percent of articles (by title hash) kept out of training.

    Returns:
        Two lists of dicts with id, question, context, answers (text, start) and title.
    """
    data = json.loads(data_path.read_text(encoding="utf-8"))["data"]
    train: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for article in data:
        target = held if is_held_out(article["title"], holdout_percent) else train
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [] if qa.get("is_impossible") else qa["answers"]
                target.append(
                    {
                        "id": qa["id"],
                        "title": article["title"],
                        "question": qa["question"].strip(),
                        "context": para["context"],
                        "answers": [{"text": a["text"], "start": a["answer_start"]} for a in answers],
                    }
                )
    return train, held


def build_features(
    examples: list[dict[str, Any]], tokenizer: Any, *, max_length: int, stride: int
) -> list[dict[str, Any]]:
    """Tokenize question/context pairs into overlapping windows with start/end token labels.

    Args:
        examples: from :func:`load_examples`.
        tokenizer: a fast tokenizer (offset mapping needed).
        max_length: tokens per window (question + context).
        stride: tokens shared by consecutive windows of one context.

    Returns:
        One dict per window: input_ids, token_type_ids, start, end (0 = no answer in this window).
    """
    features: list[dict[str, Any]] = []
    chunk = 512
    for lo in range(0, len(examples), chunk):
        batch = examples[lo : lo + chunk]
        enc = tokenizer(
            [e["question"] for e in batch],
            [e["context"] for e in batch],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        for i, offsets in enumerate(enc["offset_mapping"]):
            example = batch[enc["overflow_to_sample_mapping"][i]]
            seq_ids = enc.sequence_ids(i)
            start_tok = end_tok = 0
            if example["answers"]:
                # first gold answer is the label (the SQuAD recipe); the rest only count at eval time
                a_start = example["answers"][0]["start"]
                a_end = a_start + len(example["answers"][0]["text"])
                ctx = [k for k, s in enumerate(seq_ids) if s == 1]
                if offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                    start_tok = next(k for k in ctx if offsets[k][1] > a_start)
                    end_tok = next(k for k in reversed(ctx) if offsets[k][0] < a_end)
            features.append(
                {
                    "input_ids": enc["input_ids"][i],
                    "token_type_ids": enc["token_type_ids"][i],
                    "start": start_tok,
                    "end": end_tok,
                }
            )
    return features
