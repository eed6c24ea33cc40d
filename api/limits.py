"""Request body limits, answered in the API's JSON error shape.

FastAPI's own ``max_body_size`` answers a plain-text 413 from outside the app's exception handlers,
so this small ASGI middleware does the job instead: a declared ``Content-Length`` over the limit is
refused before anything is read, and a chunked body is cut off as soon as it passes the limit.
"""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response


class BodyLimitMiddleware:
    """``limits`` maps a path prefix to its limit in bytes (longest prefix wins); others get ``default``."""

    def __init__(self, app: ASGIApp, *, default: int, limits: dict[str, tuple[int, str]]) -> None:
        self.app = app
        self.default = default
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> tuple[int, str]:
        for prefix, (limit, setting) in self.limits:
            if path.startswith(prefix):
                return limit, setting
        return self.default, "request bodies"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            response = error_response(
                413, f"the request body is {declared} bytes; the limit for {what} is {limit}",
                code="request_too_large",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # raised inside the route: the app's handlers turn it into the JSON 413
                    raise HTTPException(413, f"the request body is over the limit for {what} ({limit} bytes)")
            return message

        await self.app(scope, receive_within_limit, send)
