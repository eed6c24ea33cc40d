"""The FastAPI application, built by :func:`create_app` from settings.

The embedding model, the Chroma-backed index and the QA service are built once, in the lifespan
(or passed in, so tests share one loaded model), and reach routes through :mod:`api.deps`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.deps import Worker, require_api_key
from api.docs import install_offline_docs
from api.errors import install_error_handlers
from api.limits import BodyLimitMiddleware
from api.methods import AllowedMethodsMiddleware
from api.metrics import ApiMetrics, MetricsMiddleware
from api.openai_schemas import ChatCompletionChunk
from api.routes import ask, chat, documents, health
from api.routes.documents import MULTIPART_OVERHEAD
from index.pipeline import DocumentIndex
from index.settings import Settings, split_list
from qa.service import QAService

STATIC_DIR = Path(__file__).resolve().parent / "static"
JSON_BODY_LIMIT = 2 * 1024 * 1024  # questions and histories; documents have their own, larger limit

DESCRIPTION = """\
Answers from your documents, and only from them, with citations a reader can check:
every citation gives the document id and the character span (`start`, `end`) of its `quote`
in the document text (`GET /v1/documents/{doc_id}`).

* `POST /v1/ask`: the full answer object.
* `POST /v1/chat/completions`: OpenAI-compatible (plain and `stream: true`), for chat frontends
  and the `openai` client; citations in the text and in `citations`/`citeqa`.
* Documents: upload, list, read, delete.

When `CITEQA_API_KEYS` is set, `/v1/*` routes need `Authorization: Bearer <key>`; when
`CITEQA_ADMIN_KEYS` is set, adding and deleting documents needs an admin key. Every error is
`{"error": {"message", "type", "param", "code"}}`.
"""


def create_app(
    settings: Settings, *, index: DocumentIndex | None = None, qa: QAService | None = None
) -> FastAPI:
    """Build the app. Without ``index``/``qa`` they are opened from ``settings`` at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # loading the model and reading the index take seconds: off the event loop
        if app.state.index is None:
            app.state.index = await run_in_threadpool(DocumentIndex.open, settings)
        if app.state.qa is None:
            app.state.qa = await run_in_threadpool(lambda: QAService(index=app.state.index, settings=settings))
        yield

    app = FastAPI(
        title="citeqa",
        version="0.1.0",
        summary="Citation-checked question answering over your documents.",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from local files below: the default pages load from a CDN
        redoc_url=None,
        # no redirect from /v1/documents/ to the list: an empty document id is a 404, not the list
        redirect_slashes=False,
    )
    install_offline_docs(app)
    app.state.settings = settings
    app.state.index = index if index is not None else (qa.index if qa is not None else None)
    app.state.qa = qa
    app.state.metrics = metrics = ApiMetrics()
    app.state.worker = Worker()

    install_error_handlers(app)
    # add_middleware wraps what is already there: the last added runs first
    upload_limit = settings.max_upload_bytes + MULTIPART_OVERHEAD
    app.add_middleware(
        BodyLimitMiddleware,
        default=JSON_BODY_LIMIT,
        limits={"/v1/documents": (upload_limit, "uploads (CITEQA_MAX_UPLOAD_BYTES plus multipart overhead)")},
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(AllowedMethodsMiddleware, routes=app.router.routes)
    origins = split_list(settings.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )

    keyed = [Depends(require_api_key)]
    app.include_router(ask.router, dependencies=keyed)
    app.include_router(chat.router, dependencies=keyed)
    app.include_router(documents.router, dependencies=keyed)
    app.include_router(health.router)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        """The built-in chat page."""
        return FileResponse(STATIC_DIR / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _finish_schema(app, settings)
    return app


def _finish_schema(app: FastAPI, settings: Settings) -> None:
    """What the schema can only say once settings are known: the question length limit, and bearer
    auth only when keys are configured (without them the API is open)."""
    build = app.openapi
    keyed = bool(split_list(settings.api_keys) or split_list(settings.admin_keys))
    limit = settings.max_question_chars

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.get("components", {})
            if not keyed:
                components.pop("securitySchemes", None)
                for operations in schema.get("paths", {}).values():
                    for operation in operations.values():
                        if isinstance(operation, dict):
                            operation.pop("security", None)
            models = components.setdefault("schemas", {})
            # the streamed event, referenced by the text/event-stream response of /v1/chat/completions
            chunk = ChatCompletionChunk.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in chunk.pop("$defs", {}).items():
                models.setdefault(name, definition)
            models["ChatCompletionChunk"] = chunk
            for model, field in (("AskRequest", "question"), ("UserMessageIn", "content"), ("QuestionPart", "text")):
                _set_max_length(models.get(model, {}).get("properties", {}).get(field, {}), limit)
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                        _drop_null_branch(param)
            for param in schema.get("paths", {}).get("/v1/search", {}).get("get", {}).get("parameters", []):
                if param.get("name") == "q":
                    _set_max_length(param.get("schema", {}), limit)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_null_branch(param: dict[str, Any]) -> None:
    """A query string cannot carry null: an optional parameter is simply left out. FastAPI still
    writes ``anyOf: [T, null]`` for ``T | None``, which tells clients (and fuzzers) null is a value."""
    schema = param.get("schema", {})
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if param.get("in") == "query" and len(branches) == 1 and len(schema["anyOf"]) == 2:
        rest = {k: v for k, v in schema.items() if k != "anyOf"}
        param["schema"] = {**branches[0], **rest}


def _set_max_length(node: dict[str, Any], limit: int) -> None:
    """maxLength on a string schema, or on the string branch of an anyOf."""
    if node.get("type") == "string":
        node["maxLength"] = limit
    for branch in node.get("anyOf", []):
        if branch.get("type") == "string":
            branch["maxLength"] = limit
