"""POST /v1/ask (the full answer object) and GET /v1/search (ranked passages, for debugging retrieval)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import MetricsDep, QADep, WorkerDep
from api.errors import ApiError
from api.schemas import NON_BLANK, AnswerOut, AskRequest, IsoDate, SearchResponse, error_responses
from qa.types import Filters

router = APIRouter(tags=["answers"])


# Answering is CPU-bound (embedding, scoring): it runs in worker threads, never on the event loop,
# and at most one answer per core at a time (see api.deps.Worker).
@router.post("/v1/ask", response_model=AnswerOut, responses=error_responses(400, 401, 404, 413, 422, 503))
async def ask(body: AskRequest, qa: QADep, worker: WorkerDep, metrics: MetricsDep) -> dict[str, Any]:
    """Answer a question from the indexed documents, every claim cited to an exact span (or refuse)."""
    if body.answerer is not None and body.answerer not in qa.answerers:
        raise ApiError(404, f"the answerer {body.answerer!r} is not configured; available: {', '.join(qa.answerers)}",
                       code="model_not_found", param="answerer")
    answer = await worker.run(
        qa.ask,
        body.question,
        history=[m.to_message() for m in body.history],
        filters=body.filters.to_filters() if body.filters else None,
        top_k=body.top_k,
        answerer=body.answerer,
    )
    metrics.observe_answer(answer)
    return answer.to_dict()


@router.get("/v1/search", response_model=SearchResponse, responses=error_responses(400, 401, 422, 503))
async def search(
    qa: QADep,
    worker: WorkerDep,
    q: Annotated[
        str, Query(min_length=1, pattern=NON_BLANK, description="The query.", examples=["Boukamal mass graves"])
    ],
    k: Annotated[int | None, Query(ge=1, le=50, description="How many passages (default CITEQA_TOP_K).")] = None,
    doc_id: Annotated[list[str] | None, Query(description="Only these documents (repeatable).")] = None,
    source: Annotated[list[str] | None, Query(description="Only these sources (repeatable).")] = None,
    date_from: Annotated[IsoDate | None, Query(description="Published on or after (ISO date).")] = None,
    date_to: Annotated[IsoDate | None, Query(description="Published on or before (ISO date).")] = None,
) -> dict[str, Any]:
    """The ranked passages hybrid retrieval finds for a query, with dense and BM25 scores."""
    if date_from and date_to and date_from > date_to:
        raise ApiError(422, f"date_from ({date_from}) is after date_to ({date_to})", code="invalid_request",
                       param="date_from")
    filters = Filters(
        doc_ids=tuple(doc_id) if doc_id else None,
        sources=tuple(source) if source else None,
        date_from=date_from,
        date_to=date_to,
    )
    passages = await worker.run(qa.search, q, filters=None if filters.empty else filters, k=k)
    return {"query": q, "passages": [p.to_dict() for p in passages]}
