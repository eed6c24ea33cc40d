"""Errors at the HTTP edge: every failure becomes a 4xx/5xx JSON body in OpenAI's error shape.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}`` is used on every route (not
only the OpenAI-compatible ones) so a client parses one shape. Domain errors from ``index``/``qa``
(:mod:`index.errors`) are translated here and nowhere else:

=====================  ======  ========================
domain error           status  code
=====================  ======  ========================
InvalidRequest         400     invalid_request
UnsupportedFileType    415     unsupported_file_type
DocumentError          400     invalid_document
DocumentNotFound       404     document_not_found
StoreError             503     store_unavailable
ModelError/ConfigError 500     server_misconfigured
=====================  ======  ========================

Schema validation failures are 422 (FastAPI's convention) except on the OpenAI-compatible routes,
which answer 400 like OpenAI does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.errors import (
    CiteqaError,
    ConfigError,
    DocumentError,
    DocumentNotFound,
    InvalidRequest,
    ModelError,
    StoreError,
    UnsupportedFileType,
)

log = logging.getLogger("citeqa.api")

OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")

_HTTP_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An HTTP error with a message naming the problem, raised by routes and dependencies."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers


def error_body(status_code: int, message: str, *, code: str | None, param: str | None = None) -> dict[str, Any]:
    kind = _HTTP_TYPES.get(status_code, "server_error" if status_code >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def error_response(
    status_code: int,
    message: str,
    *,
    code: str | None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status_code, message, code=code, param=param), status_code, headers=headers)


def domain_error(exc: CiteqaError) -> ApiError:
    """The HTTP form of a domain error."""
    param = getattr(exc, "param", None)
    if isinstance(exc, InvalidRequest):
        return ApiError(400, str(exc), code=getattr(exc, "code", None) or "invalid_request", param=param)
    if isinstance(exc, UnsupportedFileType):
        return ApiError(415, str(exc), code="unsupported_file_type", param=param or "file")
    if isinstance(exc, DocumentError):
        return ApiError(400, str(exc), code="invalid_document", param=param)
    if isinstance(exc, DocumentNotFound):
        return ApiError(404, str(exc), code="document_not_found", param="doc_id")
    if isinstance(exc, StoreError):
        return ApiError(503, str(exc), code="store_unavailable")
    if isinstance(exc, ModelError | ConfigError):
        return ApiError(500, str(exc), code="server_misconfigured")
    return ApiError(500, str(exc), code="internal_error")


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """One readable sentence naming each bad field, and the first field as ``param``."""
    parts, first = [], None
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        field = ".".join(loc) or "body"
        first = first or field
        if err.get("type") == "json_invalid":
            parts.append(f"malformed JSON body: {err.get('ctx', {}).get('error', err.get('msg'))}")
            first = "body"
        else:
            parts.append(f"{field}: {err.get('msg')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more, first


def install_error_handlers(app: FastAPI) -> None:
    """Register the translations above on ``app``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, exc.message, code=exc.code, param=exc.param, headers=exc.headers)

    @app.exception_handler(CiteqaError)
    async def _citeqa_error(request: Request, exc: CiteqaError) -> JSONResponse:
        err = domain_error(exc)
        if err.status_code >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        return error_response(err.status_code, err.message, code=err.code, param=err.param)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(list(exc.errors()))
        status = 400 if request.url.path in OPENAI_PATHS else 422
        return error_response(status, message, code="invalid_request", param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 413 and message == "Content Too Large":
            message = "the request body is too large"
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, message, code=code, headers=exc.headers)

    @app.exception_handler(httpx.TransportError)
    async def _store_unreachable(request: Request, exc: httpx.TransportError) -> JSONResponse:
        # chromadb's HTTP client lets httpx errors escape when the Chroma server is down; until the
        # index layer wraps them in StoreError, they are the same condition: 503, not a 500
        log.error("%s %s: Chroma unreachable: %s", request.method, request.url.path, exc)
        return error_response(503, f"Chroma is not reachable: {exc}", code="store_unavailable")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}", code="internal_error")
