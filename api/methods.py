"""OPTIONS and 405 answers that agree with the routes.

Starlette answers a method a path does not serve with the ``Allow`` header of the first route whose
path matched, so ``/v1/documents`` (GET and POST are two routes) said ``Allow: POST``, and OPTIONS
was a 405. Here every path answers OPTIONS with 204 and the union of its routes' methods, and a
wrong method gets a 405 in the error shape with that same ``Allow``. Installed inside the CORS
middleware, so a CORS pre-flight (when CITEQA_CORS_ORIGINS is set) is still answered by it.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response

_PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE")


class AllowedMethodsMiddleware:
    def __init__(self, app: ASGIApp, *, routes: Any) -> None:
        self.app = app
        self.routes = routes  # the app's live route list (routes are added after the middleware)

    def _allowed(self, scope: Scope) -> set[str]:
        # probe each method: included routers (FastAPI wraps them) answer matches() like routes do
        methods: set[str] = set()
        for route in self.routes:
            if isinstance(route, Mount):  # static files: any method matches the mount itself
                continue
            for method in _PROBED:
                if method not in methods and route.matches({**scope, "method": method})[0] == Match.FULL:
                    methods.add(method)
        return methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self._allowed(scope)
        method = scope["method"]
        if not allowed or method in allowed or (method == "HEAD" and "GET" in allowed):
            await self.app(scope, receive, send)
            return
        allow = ", ".join(sorted(allowed | {"OPTIONS"}))
        if method == "OPTIONS":
            from starlette.responses import Response

            response: Any = Response(status_code=204, headers={"Allow": allow})
        else:
            response = error_response(405, f"{method} is not allowed here; allowed: {allow}",
                                      code="method_not_allowed", headers={"Allow": allow})
        await response(scope, receive, send)
