"""Request and response bodies of the OpenAI-compatible routes (``/v1/chat/completions``, ``/v1/models``).

Split from :mod:`api.schemas`, which holds citeqa's own bodies and the shared field types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.schemas import (
    EXAMPLE_QUESTION,
    AnswerOut,
    CitationOut,
    FiltersIn,
    NonBlank,
    OnlyOne,
    Text,
    TopK,
)


class TextPart(BaseModel):
    """A text content part (the only kind citeqa reads)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: Text


class QuestionPart(TextPart):
    """The text part of a user message: the question, so not blank."""

    text: NonBlank


def _message_text(content: str | list[Any] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content)


class UserMessageIn(BaseModel):
    """A user turn: a question, as a non-blank string or one text part (limit: CITEQA_MAX_QUESTION_CHARS)."""

    model_config = ConfigDict(extra="allow")

    role: Literal["user"]
    content: NonBlank | Annotated[list[QuestionPart], Field(min_length=1, max_length=1)]

    def text(self) -> str:
        return _message_text(self.content)


class OtherMessageIn(BaseModel):
    """A system, developer or assistant turn; ``content`` may be missing. Other fields OpenAI clients
    send (``name``, ``tool_calls`` ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "assistant"]
    content: Text | list[TextPart] | None = None

    def text(self) -> str:
        return _message_text(self.content)


ChatMessageIn = Annotated[UserMessageIn | OtherMessageIn, Field(discriminator="role")]


class StreamOptions(BaseModel):
    """OpenAI's stream options; fields other than include_usage are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(False, strict=True)


# the conversation must hold a question: at least one user message (checked by the handler too)
_HAS_USER_MESSAGE: JsonDict = {
    "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]}
}


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request. Sampling parameters are accepted and ignored.

    The question is the last user message; the user/assistant turns before it are the history used
    to resolve follow-ups (messages after it, e.g. an assistant prefill, are ignored). ``filters``
    and ``top_k`` are citeqa extensions (``extra_body`` in the openai client). Other fields OpenAI
    clients send (``temperature``, ``max_tokens``, ``seed`` ...) are accepted and ignored.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"model": "extractive", "messages": [{"role": "user", "content": EXAMPLE_QUESTION}]},
                {
                    "model": "extractive",
                    "stream": True,
                    "messages": [
                        {"role": "user", "content": "Who controls Abu Kamal?"},
                        {"role": "assistant", "content": "Sources disagree ... [1] [2]"},
                        {"role": "user", "content": "Who reported that?"},
                    ],
                },
            ]
        },
    )

    model: str = Field(description="An answerer from GET /v1/models: extractive, or llm when configured (else 404).")
    messages: list[ChatMessageIn] = Field(min_length=1, json_schema_extra=_HAS_USER_MESSAGE)
    stream: bool = Field(False, strict=True)
    stream_options: StreamOptions | None = None
    n: OnlyOne | None = Field(None, description="Number of choices: only 1 is supported.")
    user: str | None = Field(None, description="OpenAI's end-user id; accepted and ignored.")
    filters: FiltersIn | None = Field(None, description="citeqa extension: restrict retrieval.")
    top_k: TopK | None = Field(None, description="citeqa extension: passages handed to the answerer.")


class ChatMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="The answer, then a numbered 'References:' list with title, source, quote.")
    refusal: str | None = None


class ChoiceOut(BaseModel):
    index: int = 0
    message: ChatMessageOut
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    """Token counts, approximated by word pieces (the extractive answerer has no tokenizer)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """OpenAI's chat completion, plus ``citations`` and the full answer object in ``citeqa``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: Usage
    citations: list[CitationOut] = Field(description="citeqa extension: the structured citations [n].")
    citeqa: AnswerOut = Field(description="citeqa extension: the full answer object, as POST /v1/ask returns it.")


class DeltaOut(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoiceOut(BaseModel):
    index: int = 0
    delta: DeltaOut
    finish_reason: Literal["stop"] | None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed completion (``data: {chunk}``; the stream ends with ``data: [DONE]``).

    The first chunk's delta has the role, the next ones pieces of the content; the chunk with
    ``finish_reason: "stop"`` carries ``citations`` and ``citeqa``; with ``stream_options.include_usage``
    a last chunk with no choices carries ``usage``.
    """

    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoiceOut]
    citations: list[CitationOut] | None = None
    citeqa: AnswerOut | None = None
    usage: Usage | None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "citeqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]
