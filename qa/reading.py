"""What the trained reader (``qa/reader``) adds to an extractive answer.

The answerer picks its best sentence by similarity and word overlap; the reader then reads that
sentence with its neighbours (the window a SQuAD paragraph-trained model expects, short enough to
cost one small forward pass) and says two things the sentence scores cannot:

- how strongly it believes the window holds no answer (``reader_no_answer``, a signal for the
  answerability model: SQuAD 2.0's near misses look answerable to similarity and overlap);
- where exactly the answer is (a span of the best sentence, used as the answer phrase).
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
# The reader's span is an answer phrase only when it beats "no answer" by this much (no-answer score
# at most -SPAN_MARGIN). None: any span inside the sentence; requiring 0 lowered SQuAD answer-phrase
# F1 on fold 0 (0.511 -> 0.466) and changed nothing elsewhere.
SPAN_MARGIN: float | None = None


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
    def confidence(self) -> float:
        """The logistic of minus the no-answer score: near 1 when the reader is sure of a span."""
        return 1.0 / (1.0 + math.exp(max(-NO_ANSWER_CLIP, min(NO_ANSWER_CLIP, self.no_answer))))

    def signals(self) -> dict[str, float]:
        return {
            "reader_no_answer": round(max(-NO_ANSWER_CLIP, min(NO_ANSWER_CLIP, self.no_answer)) / 10.0, 4),
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


def read_best(reader: Any, question: str, best: Evidence) -> ReaderView:
    """Run ``reader`` on the window around one sentence."""
    return read_many(reader, question, [best])[0]


def _view(best: Evidence, lo: int, reading: Any) -> ReaderView:
    span = reading.best
    if span is None:
        return ReaderView(no_answer=NO_ANSWER_CLIP, in_sentence=False, phrase=None)
    s, e = best.start - lo, best.end - lo  # the sentence inside the window
    inside = s <= span.start and span.end <= e
    phrase = None
    text = span.text.strip(" ,;:")
    sure = SPAN_MARGIN is None or reading.no_answer_score <= -SPAN_MARGIN
    if inside and sure and text and len(text.split()) <= MAX_PHRASE_WORDS:
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


def answer_phrases(
    question: str,
    pool: list[Evidence],
    *,
    reader: Any,
    spacy: Any,
    views: dict[int, ReaderView],
    fallback: bool = True,
) -> dict[int, tuple[str, int, int]]:
    """Answer phrases (text, start, end in the sentence) of ``pool``'s sentences, keyed by ``id()``.

    The reader's span inside each sentence first (``views`` holds what it already read; the others
    are read in one batch and added); with ``fallback``, spaCy's typed phrase (``spacy``, a
    :class:`qa.phrases.PhraseExtractor`) for sentences the reader gives none.
    """
    out: dict[int, tuple[str, int, int]] = {}
    if reader is not None:
        unread = [ev for ev in pool if id(ev) not in views]
        for ev, view in zip(unread, read_many(reader, question, unread), strict=True):
            views[id(ev)] = view
        for ev in pool:
            phrase = views[id(ev)].phrase
            if phrase is not None:
                out[id(ev)] = phrase
        if not fallback:
            return out
    rest = [ev for ev in pool if id(ev) not in out]
    if spacy is None or not rest:
        return out
    # One confidence bar for every phrase (the extractor's, tuned on SQuAD training pages): a lower
    # one for other documents' phrases put near-synonyms side by side as "different answers" on
    # sample-news (measured: eval/README.md).
    for ev, found in zip(rest, spacy.extract(question, [ev.text for ev in rest]), strict=True):
        if found is not None and ev.text[found.start : found.end] == found.text:
            out[id(ev)] = (found.text, found.start, found.end)
    return out
