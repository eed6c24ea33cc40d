"""Service routes: liveness, readiness and Prometheus metrics (no API key needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import MetricsDep
from api.schemas import Health, Readiness
from index.errors import CiteqaError

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=Health)
async def healthz() -> dict[str, str]:
    """Liveness: the process answers HTTP."""
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "Not ready"}})
def readyz(request: Request) -> Any:
    """Readiness: the index is loaded and Chroma answers."""
    index = getattr(request.app.state, "index", None)
    body: dict[str, Any] = {"status": "not ready", "index_loaded": index is not None, "chroma_reachable": False}
    if index is None:
        body["detail"] = "the index is still loading"
        return JSONResponse(body, status_code=503)
    try:
        index.store.heartbeat()
        index.store.generation()  # a real read of the collection, not only the server's heartbeat
        body["chroma_reachable"] = True
    except CiteqaError as exc:
        body["detail"] = str(exc)
        return JSONResponse(body, status_code=503)
    except Exception as exc:  # chromadb raises plain exceptions when the server goes away mid-call
        body["detail"] = f"Chroma failed: {exc}"
        return JSONResponse(body, status_code=503)
    body["status"] = "ready"
    return body


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request, metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests and latencies per route, answers and refusals, index size."""
    index = getattr(request.app.state, "index", None)
    stats = None
    if index is not None:
        try:
            stats = index.stats()
        except Exception:  # a scrape must still answer while Chroma is down; the gauges keep their last value
            stats = None
    return Response(metrics.render(stats), media_type=CONTENT_TYPE_LATEST)
