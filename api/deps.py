"""What routes receive: the heavy objects built once in the lifespan, and the API-key checks.

Routes declare ``index: IndexDep``, ``qa: QADep`` ...; tests replace an object by passing it to
``create_app`` (or through ``app.dependency_overrides``), never by patching.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.metrics import ApiMetrics
from index.pipeline import DocumentIndex
from index.settings import Settings, split_list
from qa.service import QAService


# async although trivial: FastAPI runs a sync dependency in the thread pool, one hop per request each
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_index(request: Request) -> DocumentIndex:
    index = getattr(request.app.state, "index", None)
    if index is None:
        raise ApiError(503, "the index is still loading", code="not_ready")
    return index  # type: ignore[no-any-return]


async def get_qa(request: Request) -> QAService:
    qa = getattr(request.app.state, "qa", None)
    if qa is None:
        raise ApiError(503, "the answering service is still loading", code="not_ready")
    return qa  # type: ignore[no-any-return]


P = ParamSpec("P")
T = TypeVar("T")


def usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 2


class Worker:
    """Runs blocking, CPU-bound library calls (embedding, scoring) in threads, a few at a time.

    On a small machine more concurrent answers than cores only make every answer slower (each one
    also runs torch's own threads), so requests beyond ``limit`` wait their turn instead.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit or usable_cpus()
        self._limiter: CapacityLimiter | None = None

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._limiter is None:  # created on first use, inside the server's event loop
            self._limiter = CapacityLimiter(self.limit)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)


async def get_worker(request: Request) -> Worker:
    return request.app.state.worker  # type: ignore[no-any-return]


async def get_metrics(request: Request) -> ApiMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]
IndexDep = Annotated[DocumentIndex, Depends(get_index)]
QADep = Annotated[QAService, Depends(get_qa)]
MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]
WorkerDep = Annotated[Worker, Depends(get_worker)]

# auto_error=False: without keys configured the API is open, and a missing header must give our
# 401 body rather than FastAPI's 403. Declaring the scheme still puts "Authorize" into /docs.
bearer = HTTPBearer(auto_error=False, description="An API key from CITEQA_API_KEYS (or CITEQA_ADMIN_KEYS).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _matches(key: str, allowed: list[str]) -> bool:
    # compare against every key so the time taken does not reveal which one nearly matched
    found = False
    for candidate in allowed:
        found |= secrets.compare_digest(key.encode(), candidate.encode())
    return found


def _presented_key(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials is not None else None


async def require_api_key(settings: SettingsDep, credentials: Credentials) -> None:
    """When CITEQA_API_KEYS is set, every /v1 route needs one of those keys (an admin key also works)."""
    keys = split_list(settings.api_keys)
    if not keys:
        return
    key = _presented_key(credentials)
    if key is None:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", code="missing_api_key",
                       headers=_CHALLENGE)
    if not _matches(key, keys + split_list(settings.admin_keys)):
        raise ApiError(401, "invalid API key", code="invalid_api_key", headers=_CHALLENGE)


async def require_admin_key(settings: SettingsDep, credentials: Credentials) -> None:
    """When CITEQA_ADMIN_KEYS is set, adding and deleting documents needs one of those keys."""
    admin = split_list(settings.admin_keys)
    if not admin:
        return
    key = _presented_key(credentials)
    if key is None:
        raise ApiError(401, "missing admin key: send 'Authorization: Bearer <admin key>'", code="missing_api_key",
                       headers=_CHALLENGE)
    if not _matches(key, admin):
        if _matches(key, split_list(settings.api_keys)):
            raise ApiError(403, "this key may read but not change documents; use an admin key",
                           code="admin_key_required")
        raise ApiError(401, "invalid API key", code="invalid_api_key", headers=_CHALLENGE)


ApiKey = Depends(require_api_key)
AdminKey = Depends(require_admin_key)
