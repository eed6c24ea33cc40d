"""What the trained reader (``qa/reader``) adds to an extractive answer.

The answerer picks sentences by similarity and word overlap; the reader reads the best few, each with
its neighbours (the window a SQuAD paragraph-trained model expects, short enough to batch cheaply),
and says what the sentence scores cannot: where exactly the answer is (a span of the sentence, which
leads a factoid answer) and how sure it is of it (which re-ranks the sentences). Its no-answer score
is kept in ``Answer.signals`` (``reader_no_answer``) but did not pay as a refusal signal.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

from qa.evidence import Evidence

NEIGHBOURS = 1  # sentences read on each side of the best one
NO_ANSWER_CLIP = 20.0  # the score is a logit difference; beyond this it says nothing more
MAX_PHRASE_WORDS = 12
# Any span inside the sentence counts as its phrase: requiring it to beat "no answer" lowered SQuAD
# answer-phrase F1 on fold 0 (0.511 -> 0.466) and changed nothing elsewhere.


@dataclass(frozen=True)
class ReaderView:
    """The reader's view of the best evidence sentence.

    ``phrase`` is (text, start, end) relative to the sentence, or None when the reader's best span
    is not inside the sentence (or too long to lead an answer).
    """

    no_answer: float
    in_sentence: bool
    phrase: tuple[str, int, int] | None

    @property
    def clipped(self) -> float:
        return max(-NO_ANSWER_CLIP, min(NO_ANSWER_CLIP, self.no_answer))

    @property
    def confidence(self) -> float:
        """The logistic of minus the no-answer score: near 1 when the reader is sure of a span."""
        return 1.0 / (1.0 + math.exp(self.clipped))

    def signals(self) -> dict[str, float]:
        return {
            "reader_no_answer": round(self.clipped / 10.0, 4),
            "reader_in_sentence": 1.0 if self.in_sentence else 0.0,
        }


@functools.lru_cache(maxsize=1)
def shipped_reader() -> Any:
    """The reader shipped in ``qa/models/reader`` (sha256-checked), loaded once per process."""
    from qa.reader.model import Reader

    return Reader()


def window_of(best: Evidence) -> tuple[int, int]:
    """Document offsets of the best sentence with ``NEIGHBOURS`` sentences on each side (in its chunk)."""
    spans = list(best.chunk.sentences)
    at = next((i for i, (s, e) in enumerate(spans) if s <= best.start and best.end <= e), None)
    if at is None:
        return best.start, best.end
    lo = spans[max(0, at - NEIGHBOURS)][0]
    hi = spans[min(len(spans) - 1, at + NEIGHBOURS)][1]
    return min(lo, best.start), max(hi, best.end)


def read_many(reader: Any, question: str, evidence: list[Evidence]) -> list[ReaderView]:
    """Run ``reader`` (a :class:`qa.reader.model.Reader`) on the window around each sentence, in one batch."""
    windows = [window_of(ev) for ev in evidence]
    texts = [
        ev.chunk.text[lo - ev.chunk.start : hi - ev.chunk.start] for ev, (lo, hi) in zip(evidence, windows, strict=True)
    ]
    readings = reader.read_each(question, texts, top_k=1) if texts else []
    return [_view(ev, lo, reading) for ev, (lo, _), reading in zip(evidence, windows, readings, strict=True)]


def _view(best: Evidence, lo: int, reading: Any) -> ReaderView:
    span = reading.best
    if span is None:
        return ReaderView(no_answer=NO_ANSWER_CLIP, in_sentence=False, phrase=None)
    s, e = best.start - lo, best.end - lo  # the sentence inside the window
    inside = s <= span.start and span.end <= e
    phrase = None
    text = span.text.strip(" ,;:")
    if inside and text and len(text.split()) <= MAX_PHRASE_WORDS:
        start = span.start - s + span.text.index(text)
        phrase = (text, start, start + len(text))
    return ReaderView(no_answer=reading.no_answer_score, in_sentence=inside, phrase=phrase)


def rerank(
    reader: Any, question: str, evidence: list[Evidence], *, top: int, weight: float
) -> tuple[list[Evidence], dict[int, ReaderView]]:
    """Read the ``top`` sentences and raise those whose window the reader answers from inside them.

    The raise is ``weight`` times the reader's confidence (the logistic of minus its no-answer
    score) for a sentence holding the reader's best span, and counts as a ranking preference
    (``Evidence.boost``), not as evidence strength. Returns the evidence best first again and
    the reader's view of each sentence read, keyed by ``id()`` of the returned evidence.
    """
    head = evidence[:top]
    views = read_many(reader, question, head)
    raised: list[Evidence] = []
    by_id: dict[int, ReaderView] = {}
    for ev, view in zip(head, views, strict=True):
        bonus = weight * view.confidence if view.in_sentence else 0.0
        if bonus:
            ev = dataclasses.replace(ev, score=ev.score + bonus, boost=ev.boost + bonus)
        raised.append(ev)
        by_id[id(ev)] = view
    ranked = sorted(raised + evidence[top:], key=lambda e: -e.score)
    return ranked, by_id

