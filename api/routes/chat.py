"""OpenAI-compatible routes: POST /v1/chat/completions (plain and streaming) and GET /v1/models."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api import chat_format
from api.deps import MetricsDep, QADep, Worker, WorkerDep
from api.errors import ApiError, domain_error, error_body
from api.metrics import ApiMetrics
from api.openai_schemas import ChatCompletion, ChatCompletionRequest, ModelList
from api.schemas import error_responses
from index.errors import CiteqaError, InvalidRequest
from qa.service import QAService
from qa.types import Message

router = APIRouter(tags=["openai-compatible"])
_STARTED = int(time.time())

STREAM_DOC = {
    "description": "The completion; or, with `stream: true`, server-sent events in OpenAI's chunk format: "
    "`data: <ChatCompletionChunk as JSON>` events separated by blank lines (the chunk with `finish_reason` "
    "carries `citations` and `citeqa`), then `data: [DONE]`.",
    "content": {
        "text/event-stream": {
            # Open API 3.1: the schema of a text/event-stream response describes each event
            "schema": {
                "type": "object",
                "required": ["data"],
                "properties": {
                    "data": {
                        "anyOf": [
                            {
                                "type": "string",
                                "pattern": "^\\{",
                                "contentMediaType": "application/json",
                                "contentSchema": {"$ref": "#/components/schemas/ChatCompletionChunk"},
                            },
                            {"const": "[DONE]", "description": "The last event."},
                        ],
                        "description": "A ChatCompletionChunk; or, when answering fails after the stream "
                        "started, an error object ({\"error\": {message, type, param, code}}) followed by [DONE].",
                    }
                },
            },
        }
    },
}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={200: STREAM_DOC, **error_responses(400, 401, 404, 413, 503)},
)
async def chat_completions(body: ChatCompletionRequest, qa: QADep, worker: WorkerDep, metrics: MetricsDep) -> Any:
    """Answer the last user message, OpenAI-style; earlier turns resolve follow-ups. Citations included."""
    if body.model not in qa.answerers:
        raise ApiError(404, f"the model {body.model!r} does not exist; available: {', '.join(qa.answerers)}",
                       code="model_not_found", param="model")
    question, history = chat_format.split_conversation(body.messages)
    filters = body.filters.to_filters() if body.filters else None
    try:
        qa.check_request(question, history=history, top_k=body.top_k, answerer=body.model)
        if body.stream:
            return _stream(body, question, history, qa=qa, worker=worker, metrics=metrics)
        answer = await worker.run(qa.ask, question, history=history, filters=filters, top_k=body.top_k,
                                  answerer=body.model)
    except InvalidRequest as exc:
        # the question is the last message here; name the field an OpenAI client sent
        param = getattr(exc, "param", None)
        raise ApiError(400, str(exc), code="invalid_request",
                       param="messages" if param in (None, "question") else param) from exc
    metrics.observe_answer(answer)
    return chat_format.chat_completion(answer, model=body.model, prompt=[question] + [m.content for m in history])


def _stream(body: ChatCompletionRequest, question: str, history: list[Message], *, qa: QAService, worker: Worker,
            metrics: ApiMetrics) -> StreamingResponse:
    """Start the event stream at once (the first chunk, with the role, goes out before the answer is
    built); an error while answering ends the stream with an error event and ``data: [DONE]``."""
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    base = chat_format.stream_base(body.model)
    prompt = [question] + [m.content for m in history]

    async def events() -> AsyncIterator[str]:
        yield chat_format.role_event(base)
        try:
            answer = await worker.run(qa.ask, question, history=history, top_k=body.top_k, answerer=body.model,
                                      filters=body.filters.to_filters() if body.filters else None)
        except CiteqaError as exc:
            err = domain_error(exc)
            yield chat_format.sse(error_body(err.status_code, err.message, code=err.code, param=err.param))
            yield chat_format.DONE
            return
        metrics.observe_answer(answer)
        for event in chat_format.answer_events(answer, base=base, prompt=prompt, include_usage=include_usage):
            yield event

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/v1/models", response_model=ModelList, responses=error_responses(401))
def list_models(qa: QADep) -> dict[str, Any]:
    """The answerers, as OpenAI models: extractive always, llm when an LLM endpoint is configured."""
    return {"object": "list", "data": [{"id": name, "object": "model", "created": _STARTED, "owned_by": "citeqa"}
                                       for name in qa.answerers]}
