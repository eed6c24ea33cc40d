"""Documents: add (file upload or JSON), list, read (metadata and full text), delete.

Adding is idempotent like ``citeqa index add``: an unchanged document is reported ``unchanged`` and
nothing is re-embedded; a changed one is ``updated``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import PurePath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from api.deps import AdminKey, IndexDep, SettingsDep, Worker, WorkerDep
from api.errors import ApiError
from api.schemas import (
    NON_BLANK,
    AddReportOut,
    DeleteResult,
    DocumentIn,
    DocumentList,
    DocumentOut,
    error_responses,
)
from index.loaders import (
    DOC_ID_PATTERN,
    DOC_ID_RULE,
    SUPPORTED_SUFFIXES,
    derive_doc_id,
    document_from_record,
    load_bytes,
)
from index.models import Document, DocumentInfo

router = APIRouter(tags=["documents"])

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MULTIPART_OVERHEAD = 64 * 1024  # headers and boundaries around the files in a multipart body
_META_FIELDS = ("id", "title", "source", "url", "published_at")

_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "format": "binary"},
                        "description": f"One or more files ({' '.join(SUPPORTED_SUFFIXES)}); the id is the file "
                        "name without its suffix. Limit per file: CITEQA_MAX_UPLOAD_BYTES.",
                    },
                    **{
                        name: {"type": "string", "pattern": NON_BLANK,
                               "description": f"Overrides the file's {name} (single file only)."}
                        for name in ("title", "source", "url")
                    },
                    "id": {"type": "string", "pattern": DOC_ID_PATTERN, "description": f"The id: {DOC_ID_RULE}."},
                    "published_at": {"type": "string", "format": "date", "description": "ISO date."},
                },
            }
        },
        "application/json": {
            "schema": DocumentIn.model_json_schema(),
            "examples": {"document": {"value": DocumentIn.model_config["json_schema_extra"]["examples"][0]}},  # type: ignore[index]
        },
    },
}


def _too_large(what: str, size: int, limit: int) -> ApiError:
    return ApiError(413, f"{what} is {size} bytes; the limit is {limit} (CITEQA_MAX_UPLOAD_BYTES)",
                    code="file_too_large", param="file")


async def _documents_from_form(request: Request, limit: int, worker: Worker) -> list[Document]:
    form = await request.form(max_files=100, max_fields=20)
    uploads = [f for f in form.getlist("file") if isinstance(f, UploadFile)]
    if not uploads:
        raise ApiError(400, "no file: send the document as the multipart field 'file'", code="missing_file",
                       param="file")
    meta = _form_metadata({k: v for k in _META_FIELDS if isinstance(v := form.get(k), str)})
    if meta and len(uploads) > 1:
        raise ApiError(400, "metadata fields apply to a single file; upload one file at a time to set them",
                       code="invalid_request", param=next(iter(meta)))
    files: list[tuple[str, bytes]] = []
    for upload in uploads:
        name = upload.filename or "upload"
        if upload.size is not None and upload.size > limit:
            raise _too_large(name, upload.size, limit)
        files.append((name, await upload.read()))
    # parsing PDFs and HTML is CPU work: keep it off the event loop
    return await worker.run(_load_files, files, meta)


def _form_metadata(fields: dict[str, str]) -> dict[str, str]:
    """The metadata fields of an upload, held to the schema: a field that is sent must be valid."""
    for name, value in fields.items():
        if name == "id" and not re.match(DOC_ID_PATTERN, value):
            raise ApiError(400, f"id {value[:60]!r} is not a valid document id: use {DOC_ID_RULE}",
                           code="invalid_request", param="id")
        if name == "published_at" and not _ISO_DAY.match(value):
            raise ApiError(400, f"published_at {value[:40]!r} is not an ISO date (YYYY-MM-DD)",
                           code="invalid_request", param="published_at")
        if not re.match(NON_BLANK, value):
            raise ApiError(400, f"{name} is blank or contains a NUL character", code="invalid_request", param=name)
    return fields


def _load_files(files: list[tuple[str, bytes]], meta: dict[str, str]) -> list[Document]:
    docs: list[Document] = []
    for name, data in files:
        docs.extend(load_bytes(data, name=name, sidecar=meta or None))
    return docs


async def _document_from_json(request: Request, limit: int) -> Document:
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON body: {exc}", code="invalid_json", param="body") from None
    try:
        body = DocumentIn.model_validate(payload)
    except ValidationError as exc:  # the same 422 naming the field as a declared body would give
        raise RequestValidationError(exc.errors(include_url=False)) from None
    if len(body.text.encode()) > limit:
        raise _too_large("text", len(body.text.encode()), limit)
    record: dict[str, Any] = body.model_dump()
    if not record["id"]:
        record["id"] = derive_doc_id(body.title.strip())
    return document_from_record(record, source="request body")


@router.post(
    "/v1/documents",
    response_model=AddReportOut,
    dependencies=[AdminKey],
    openapi_extra={"requestBody": _UPLOAD_BODY},
    responses={
        200: {"description": "Nothing new: every document was already indexed unchanged, or updated."},
        201: {"model": AddReportOut, "description": "At least one document was added."},
        **error_responses(400, 401, 403, 413, 415, 422, 503),
    },
)
async def add_documents(
    request: Request, response: Response, index: IndexDep, worker: WorkerDep, settings: SettingsDep
) -> dict[str, Any]:
    """Add documents: multipart upload of files, or a JSON body {title, text, source?, url?, published_at?, id?}."""
    limit = settings.max_upload_bytes  # per file; BodyLimitMiddleware bounds the whole body
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        docs = await _documents_from_form(request, limit, worker)
    elif content_type in ("application/json", ""):
        docs = [await _document_from_json(request, limit)]
    else:
        raise ApiError(415, f"send multipart/form-data (a file upload) or application/json, not {content_type}",
                       code="unsupported_media_type", param="content-type")
    report = await worker.run(index.add_documents, docs)
    response.status_code = 201 if report.added else 200
    return asdict(report)


DocIdPath = Annotated[str, Path(pattern=DOC_ID_PATTERN, description=f"The document id: {DOC_ID_RULE}.")]


def _public(info: DocumentInfo) -> dict[str, Any]:
    """A document's metadata for clients: the file it came from by name only, never a server path."""
    out = asdict(info)
    path = out.pop("path", None)
    out["file"] = PurePath(path).name if path else None  # "x/records.jsonl:3" -> "records.jsonl:3"
    return out


@router.get("/v1/documents", response_model=DocumentList, responses=error_responses(401, 503))
def list_documents(index: IndexDep) -> dict[str, Any]:
    """Every indexed document with its metadata and chunk count."""
    return {"documents": [_public(d) for d in index.list_documents()]}


@router.get("/v1/documents/{doc_id}", response_model=DocumentOut, responses=error_responses(401, 404, 422, 503))
def get_document(doc_id: DocIdPath, index: IndexDep) -> dict[str, Any]:
    """A document's metadata and full text: citation offsets point into this text."""
    info, text = index.get_document(doc_id)
    return {**_public(info), "text": text}


@router.delete(
    "/v1/documents/{doc_id}",
    response_model=DeleteResult,
    dependencies=[AdminKey],
    responses=error_responses(401, 403, 404, 422, 503),
)
def delete_document(doc_id: DocIdPath, index: IndexDep) -> dict[str, Any]:
    """Delete a document and its chunks; answers stop citing it at once, in every API process."""
    removed = index.delete(doc_id)
    return {"id": doc_id, "deleted": True, "chunks_removed": removed}
