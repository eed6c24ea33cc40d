"""Translation between OpenAI's chat format and citeqa's question/history/answer.

Citations survive the trip twice: rendered into the message text as a numbered ``References:``
list (for chat clients that only show text) and as structured data in ``citations``/``citeqa``
(on the completion, and on the final chunk of a stream).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from api.errors import ApiError
from api.openai_schemas import ChatMessageIn
from qa.citations import render_references
from qa.types import Answer, Message

REFERENCES_HEADING = "References:"
SEE_ALSO_HEADING = "See also (the closest passages; they do not answer the question):"
# what we append to answers; stripped again when a client sends an answer back as history
_APPENDIX = re.compile(
    r"\n\n(?:" + re.escape(REFERENCES_HEADING) + "|" + re.escape(SEE_ALSO_HEADING) + r"|Note: )[\s\S]*\Z"
)
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORDS_PER_CHUNK = 4


def split_conversation(messages: Sequence[ChatMessageIn]) -> tuple[str, list[Message]]:
    """The question (the last user message) and the history before it.

    System and developer messages are dropped: they instruct a generative model, and citeqa's
    answers come from the documents. Answers citeqa gave earlier lose their reference lists, which
    would otherwise pollute follow-up resolution. Messages after the question are ignored.
    """
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise ApiError(400, "no user message: the last user message is the question", code="invalid_messages",
                       param="messages")
    last = users[-1]
    question = messages[last].text()
    history = []
    for message in messages[:last]:
        text = message.text()
        if message.role == "user" and text:
            history.append(Message(role="user", content=text))
        elif message.role == "assistant" and text:
            history.append(Message(role="assistant", content=strip_appendix(text)))
    return question, history


def strip_appendix(content: str) -> str:
    return _APPENDIX.sub("", content)


def render_content(answer: Answer) -> str:
    """The answer as chat text: answer, optional notice, numbered references (or see-also on a refusal)."""
    parts = [answer.text.strip()]
    if answer.notice:
        parts.append(f"Note: {answer.notice}")
    if answer.citations:
        parts.append(REFERENCES_HEADING + "\n" + render_references(answer.citations))
    if answer.refused and answer.see_also:
        parts.append(SEE_ALSO_HEADING + "\n" + render_references(answer.see_also))
    return "\n\n".join(parts)


def count_tokens(text: str) -> int:
    """Word pieces: an approximation of token counts (no tokenizer is involved in extractive answers)."""
    return len(_TOKEN.findall(text))


def usage(prompt: Sequence[str], completion: str) -> dict[str, int]:
    prompt_tokens = sum(count_tokens(t) for t in prompt)
    completion_tokens = count_tokens(completion)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def chat_completion(answer: Answer, *, model: str, prompt: Sequence[str]) -> dict[str, Any]:
    content = render_content(answer)
    data = answer.to_dict()
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
             "finish_reason": "stop", "logprobs": None}
        ],
        "usage": usage(prompt, content),
        "citations": data["citations"],
        "citeqa": data,
    }


def content_pieces(content: str) -> Iterator[str]:
    """The content in small pieces (a few words each, whitespace kept) for streaming."""
    words = re.findall(r"\s*\S+\s*", content)
    for i in range(0, len(words), _WORDS_PER_CHUNK):
        yield "".join(words[i : i + _WORDS_PER_CHUNK])


def stream_base(model: str) -> dict[str, Any]:
    """The fields every chunk of one stream shares."""
    return {"id": completion_id(), "object": "chat.completion.chunk", "created": int(time.time()), "model": model}


def sse(payload: dict[str, Any]) -> str:
    return "data: " + json.dumps(payload, ensure_ascii=False) + "\n\n"


def _delta(d: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": d, "finish_reason": finish, "logprobs": None}]


def role_event(base: dict[str, Any]) -> str:
    """The first chunk: sent as soon as the request is accepted, before the answer is built."""
    return sse({**base, "choices": _delta({"role": "assistant", "content": ""})})


def answer_events(answer: Answer, *, base: dict[str, Any], prompt: Sequence[str], include_usage: bool) -> Iterator[str]:
    """The rest of the stream once the answer exists: content pieces, the final chunk (with
    ``citations`` and ``citeqa``), the usage chunk when asked for, and ``data: [DONE]``.

    The answer is complete before any of it is sent: citeqa shows only checked text (the LLM
    answerer's sentences are verified against their passages first), so content cannot stream
    token by token as a model produces it.
    """
    content = render_content(answer)
    for piece in content_pieces(content):
        yield sse({**base, "choices": _delta({"content": piece})})
    data = answer.to_dict()
    yield sse({**base, "choices": _delta({}, "stop"), "citations": data["citations"], "citeqa": data})
    if include_usage:
        yield sse({**base, "choices": [], "usage": usage(prompt, content)})
    yield DONE


DONE = "data: [DONE]\n\n"


def stream_events(answer: Answer, *, model: str, prompt: Sequence[str], include_usage: bool) -> Iterator[str]:
    """A whole stream for an answer that already exists (OpenAI's chunk format, ending ``data: [DONE]``)."""
    base = stream_base(model)
    yield role_event(base)
    yield from answer_events(answer, base=base, prompt=prompt, include_usage=include_usage)
