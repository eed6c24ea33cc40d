"""Request and response bodies of the HTTP API (they are also the OpenAPI schema at ``/docs``); the
OpenAI-compatible ones are in :mod:`api.openai_schemas`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from index.loaders import DOC_ID_PATTERN
from qa.types import Filters, Message


def _valid_unicode(value: Any) -> Any:
    """Reject what JSON can carry but text cannot: lone UTF-16 surrogates ("\\ud800") and NUL."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("contains a lone UTF-16 surrogate; send valid Unicode text") from None
        if "\x00" in value:
            raise ValueError("contains a NUL character")
    return value


def _iso_date_only(value: Any) -> Any:
    """Dates as ISO strings only: pydantic would read 0 (or "0") as 1970-01-01."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not value[:4].isdigit() or len(value) < 10:
        raise ValueError("must be an ISO date, e.g. 2017-11-19")
    return value


NO_NUL = r"^[^\x00]*$"
NON_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"  # some non-space character, no NUL
def _json_integer(value: Any) -> Any:
    """An integer as JSON Schema means it (5 or 5.0), never a string ("5") or a boolean."""
    if isinstance(value, str | bool):
        raise ValueError("must be a JSON integer, not a string or boolean")
    return value


Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(_valid_unicode)]
TopK = Annotated[int, Field(ge=1, le=50), BeforeValidator(_json_integer)]
OnlyOne = Annotated[int, Field(ge=1, le=1), BeforeValidator(_json_integer)]
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
NonBlank = Annotated[str, Field(min_length=1, pattern=NON_BLANK), AfterValidator(_valid_unicode)]
DocId = Annotated[str, Field(pattern=DOC_ID_PATTERN, description="Letters, digits, '.', '_', '-' (1-200).")]

EXAMPLE_QUESTION = "Who controls Abu Kamal?"
EXAMPLE_CITATION: dict[str, Any] = {
    "n": 1,
    "doc_id": "004_f819b13ffc05e965",
    "title": "Syria: ISIS defeated in last major stronghold",
    "source": "Global News",
    "url": "https://globalnews.ca/news/3869084/syria-isis-defeated-last-stronghold/",
    "published_at": "2017-11-19",
    "chunk_id": "004_f819b13ffc05e965:0:1f2e3d4c5b6a7980",
    "start": 0,
    "end": 95,
    "quote": "Syrian troops and their allies captured the last major IS stronghold in the country on Sunday.",
}


# errors ---------------------------------------------------------------------------------------
class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, naming the field or value.")
    type: str = Field(description="Error class, as in OpenAI's API (e.g. invalid_request_error).")
    param: str | None = Field(None, description="The request field at fault, when there is one.")
    code: str | None = Field(None, description="Machine-readable code, e.g. empty_question, model_not_found.")


class ErrorResponse(BaseModel):
    """Every error, on every route."""

    error: ErrorDetail

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "message": "the question is empty",
                        "type": "invalid_request_error",
                        "param": "question",
                        "code": "invalid_request",
                    }
                }
            ]
        }
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the listed error statuses."""
    descriptions = {
        400: "Bad input (the message names the field)",
        401: "Missing or wrong API key (when CITEQA_API_KEYS is set)",
        403: "Not an admin key (when CITEQA_ADMIN_KEYS is set)",
        404: "Unknown document or model",
        413: "Upload or body larger than the limit",
        415: "Unsupported file type",
        422: "Body or query does not match the schema",
        503: "Chroma is unreachable",
    }
    return {s: {"model": ErrorResponse, "description": descriptions[s]} for s in statuses}


# answers --------------------------------------------------------------------------------------
class CitationOut(BaseModel):
    """A cited span: ``document.text[start:end] == quote`` (check it with GET /v1/documents/{doc_id})."""

    n: int = Field(description="The number the answer text refers to as [n].")
    doc_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None = Field(description="ISO date, or null when the document is undated.")
    chunk_id: str
    start: int = Field(description="Character offset of the quote in the full document text.")
    end: int
    quote: str

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE_CITATION]})


class ConflictSideOut(BaseModel):
    """One source's account when the documents disagree or describe different moments."""

    doc_id: str
    title: str
    source: str | None
    published_at: str | None
    statement: str
    citations: list[int] = Field(description="Citation numbers backing the statement.")
    answer: str | None = Field(None, description="This source's answer phrase, when the sides differ by answer.")


class LLMCheckOut(BaseModel):
    """What the LLM answerer's checker did with the model's reply (counts; removed text is never returned)."""

    sentences: int = Field(description="Sentences in the model's reply.")
    kept: int = Field(description="Sentences that reached the answer, each supported by its cited span.")
    removed: dict[str, int] = Field(
        description="Sentences removed, per reason: unfinished, instruction, not_a_claim, no_citation, "
        "unknown_passage, unsupported."
    )
    fallback: str | None = Field(
        description="Why the extractive answer was shown instead (llm_error, timeout, not_answered, empty, "
        "nothing_supported, misses_answer); null when the LLM's answer was shown."
    )


class AnswerOut(BaseModel):
    """The full answer object."""

    question: str
    query: str = Field(description="The question after follow-up resolution, as retrieval saw it.")
    text: str = Field(description="The answer with [n] citation markers, or the refusal sentence.")
    citations: list[CitationOut]
    refused: bool = Field(description="True when the documents do not answer; citations is then empty.")
    answerer: str
    conflicts: list[ConflictSideOut] = Field(description="Each side, when sources disagree (two or more).")
    has_conflict: bool
    see_also: list[CitationOut] = Field(description="Closest passages on a refusal, not presented as an answer.")
    score: float = Field(
        description="Estimated probability that the documents answer (compared with the refusal threshold)."
    )
    notice: str | None = Field(
        description="E.g. why the LLM answerer fell back to the extractive one, or a named source not indexed."
    )
    answer: str | None = Field(
        None, description="The short answer (name, number, date) of a factoid question, verbatim from a document."
    )
    answer_doc_id: str | None = Field(None, description="The document the short answer is quoted from.")
    answer_start: int | None = Field(
        None, description="Offset of the short answer in that document: text[answer_start:answer_end] == answer."
    )
    answer_end: int | None = None
    signals: dict[str, float] = Field(
        default_factory=dict, description="The evidence signals the answerability model weighed (for debugging)."
    )
    llm_check: LLMCheckOut | None = Field(
        None, description="Set when the LLM answerer was asked: what its checker kept, removed and why it fell back."
    )
    timings_ms: dict[str, float] = Field(description="Per-stage timings: sync, retrieve, answer, total.")


class FiltersIn(BaseModel):
    """Restrict retrieval (all optional; dates inclusive)."""

    model_config = ConfigDict(extra="forbid")

    doc_ids: list[Text] | None = Field(None, examples=[["004_f819b13ffc05e965"]])
    sources: list[Text] | None = Field(None, examples=[["Global News"]])
    date_from: IsoDate | None = Field(None, examples=["2017-11-01"])
    date_to: IsoDate | None = None

    @model_validator(mode="after")
    def _check_range(self) -> FiltersIn:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from ({self.date_from}) is after date_to ({self.date_to})")
        return self

    def to_filters(self) -> Filters:
        return Filters(
            doc_ids=tuple(self.doc_ids) if self.doc_ids else None,
            sources=tuple(self.sources) if self.sources else None,
            date_from=self.date_from,
            date_to=self.date_to,
        )


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    content: Text

    def to_message(self) -> Message:
        return Message(role=self.role, content=self.content)


class AskRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"question": EXAMPLE_QUESTION},
                {
                    "question": "And how many died?",
                    "history": [
                        {"role": "user", "content": "What happened in Abu Kamal?"},
                        {"role": "assistant", "content": "ISIS retook the city [1]."},
                    ],
                    "filters": {"date_from": "2017-11-01"},
                    "top_k": 5,
                    "answerer": "extractive",
                },
            ]
        },
    )

    question: NonBlank = Field(description="The question (limit: CITEQA_MAX_QUESTION_CHARS).")
    history: list[MessageIn] = Field(default_factory=list, description="Earlier turns, for follow-up questions.")
    filters: FiltersIn | None = None
    top_k: TopK | None = Field(None, description="Passages handed to the answerer (default CITEQA_TOP_K).")
    answerer: Literal["extractive", "llm"] | None = Field(
        None, description="extractive or llm (see GET /v1/models; llm is a 404 when no LLM endpoint is configured)."
    )


class PassageOut(BaseModel):
    chunk_id: str
    doc_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    start: int
    end: int
    text: str
    score: float = Field(description="Fused reciprocal-rank score.")
    dense_score: float | None = Field(description="Cosine similarity, when dense search found it.")
    lexical_score: float | None = Field(description="BM25 score, when lexical search found it.")
    dense_rank: int | None
    lexical_rank: int | None


class SearchResponse(BaseModel):
    query: str
    passages: list[PassageOut]


# documents ------------------------------------------------------------------------------------
class DocumentIn(BaseModel):
    """A document sent as JSON. Without ``id`` the id is derived from the title."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Mosul water supply restored",
                    "text": "Engineers restored the water supply to eastern Mosul on Monday.",
                    "source": "Example Wire",
                    "url": "https://example.org/mosul-water",
                    "published_at": "2017-11-20",
                }
            ]
        },
    )

    title: NonBlank
    text: NonBlank
    id: DocId | None = None
    source: Text | None = None
    url: Text | None = None
    published_at: IsoDate | None = Field(None, description="ISO date.")


class DocumentInfoOut(BaseModel):
    id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    file: str | None = Field(description="Name of the file it was loaded from (no directories), if any.")
    content_hash: str
    chunk_count: int
    chars: int
    added_at: str


class DocumentOut(DocumentInfoOut):
    """Metadata and the full text citations point into."""

    text: str


class DocumentList(BaseModel):
    documents: list[DocumentInfoOut]


class FailureOut(BaseModel):
    source: str
    reason: str


class AddReportOut(BaseModel):
    """What an upload changed. Re-sending an unchanged document is a no-op (``unchanged``)."""

    added: list[str]
    updated: list[str]
    unchanged: list[str]
    failed: list[FailureOut]
    chunks_embedded: int
    chunks_removed: int


class DeleteResult(BaseModel):
    id: str
    deleted: bool
    chunks_removed: int


# service --------------------------------------------------------------------------------------
class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: Literal["ready", "not ready"]
    index_loaded: bool
    chroma_reachable: bool
    detail: str | None = None
