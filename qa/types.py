"""Data types the answering layer returns (the API and the eval render these)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from qa.citations import Citation

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One turn of a conversation, OpenAI style."""

    role: Role
    content: str


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some documents, sources or a publication date range (inclusive)."""

    doc_ids: tuple[str, ...] | None = None
    sources: tuple[str, ...] | None = None
    date_from: date | None = None
    date_to: date | None = None

    @property
    def empty(self) -> bool:
        return not (self.doc_ids or self.sources or self.date_from or self.date_to)


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused rank score and the per-retriever evidence."""

    chunk_id: str
    doc_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    start: int
    end: int
    text: str
    score: float  # fused RRF score
    dense_score: float | None  # cosine similarity, when dense search found it
    lexical_score: float | None  # BM25, when lexical search found it
    dense_rank: int | None = None
    lexical_rank: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartPassages:
    """Passages retrieved for one part of a question that names its sources."""

    source: str
    clause: str  # the part of the question about this mention of the source
    passages: list[Passage]
    vector: Any  # the clause's query embedding (numpy array)


@dataclass(frozen=True)
class ConflictSide:
    """One source's account when documents disagree or describe different moments."""

    doc_id: str
    title: str
    source: str | None
    published_at: str | None
    statement: str
    citations: tuple[int, ...]  # citation numbers (Citation.n) backing the statement
    answer: str | None = None  # this source's answer phrase, when the sides differ by answer phrase

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LLMCheck:
    """What the LLM answerer's checker did with the model's reply: counts only, never removed text."""

    sentences: int = 0  # sentences in the model's reply
    kept: int = 0  # sentences that reached the answer
    removed: dict[str, int] = field(default_factory=dict)  # reason code (qa.llm_check.REASONS) -> sentences
    fallback: str | None = None  # why the extractive answer was shown instead (a reason code), else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """What citeqa says to a question.

    ``text`` carries citation markers ``[n]`` that refer to ``citations``. When ``refused`` is true
    the text says the documents do not answer and ``citations`` is empty; ``see_also`` then lists
    the closest passages, which are not presented as an answer.
    """

    question: str
    query: str  # the question after follow-up resolution, as retrieval saw it
    text: str
    citations: list[Citation]
    refused: bool
    answerer: str
    conflicts: list[ConflictSide] = field(default_factory=list)
    see_also: list[Citation] = field(default_factory=list)
    score: float = 0.0  # estimated probability that the documents answer (what the refusal threshold compares)
    notice: str | None = None  # e.g. why the LLM answerer fell back to the extractive one
    # The short answer (a name, a number, a date) for factoid questions: a span of the first citation's
    # document, document_text[answer_start:answer_end] == answer; None when no phrase was found.
    answer: str | None = None
    answer_doc_id: str | None = None
    answer_start: int | None = None
    answer_end: int | None = None
    signals: dict[str, float] = field(default_factory=dict)  # the evidence signals behind ``score``
    llm_check: LLMCheck | None = None  # set by the LLM answerer (also on its fallbacks)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def has_conflict(self) -> bool:
        return len(self.conflicts) >= 2

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["has_conflict"] = self.has_conflict
        return data
