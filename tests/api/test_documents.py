"""Documents over HTTP: upload -> ask cites it -> delete -> ask no longer cites it; every bad upload is a 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE
from fpdf import FPDF
from live_app import LiveServer, cited_docs, keep_only_the_sample, sample_qa, serve

from index.embedding import Embedder
from index.loaders import derive_doc_id

UPLOAD_LIMIT = 100_000
BRIDGE = (
    "Zorvath Bridge reopens in Kelmora\n\n"
    "The Zorvath Bridge in Kelmora was reopened on 3 March 2021 after fourteen months of repairs, "
    "the Kelmora transport office said. Engineers replaced all 212 steel cables of the suspension span."
)
BRIDGE_QUESTION = "How many steel cables were replaced on the Zorvath Bridge?"


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory), max_upload_bytes=UPLOAD_LIMIT) as server:
        yield server


@pytest.fixture()
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client
        keep_only_the_sample(client)


def ask(http: httpx.Client, question: str) -> dict[str, Any]:
    response = http.post("/v1/ask", json={"question": question})
    assert response.status_code == 200, response.text
    return response.json()


def doc_ids(http: httpx.Client) -> list[str]:
    return [d["id"] for d in http.get("/v1/documents").json()["documents"]]


def test_json_document_lifecycle(http: httpx.Client) -> None:
    body = {"title": "Zorvath Bridge reopens", "text": BRIDGE, "source": "Kelmora Post", "published_at": "2021-03-04"}
    added = http.post("/v1/documents", json=body)
    assert added.status_code == 201, added.text
    doc_id = derive_doc_id("Zorvath Bridge reopens")  # the title is not an id as it stands: slug + hash
    assert doc_id.startswith("Zorvath-Bridge-reopens-")
    assert added.json()["added"] == [doc_id] and added.json()["chunks_embedded"] >= 1

    again = http.post("/v1/documents", json=body)
    assert again.status_code == 200 and again.json()["unchanged"] == [doc_id]
    assert again.json()["chunks_embedded"] == 0

    answer = ask(http, BRIDGE_QUESTION)
    assert not answer["refused"] and cited_docs(answer) == {doc_id}
    assert "212" in answer["text"]
    citation = answer["citations"][0]
    assert citation["source"] == "Kelmora Post" and citation["published_at"] == "2021-03-04"

    listed = {d["id"]: d for d in http.get("/v1/documents").json()["documents"]}
    assert set(listed) == {DOC_RETAKE, DOC_DEFEAT, doc_id}
    document = http.get(f"/v1/documents/{doc_id}").json()
    assert document["text"] == BRIDGE and document["title"] == "Zorvath Bridge reopens"
    assert document["text"][citation["start"] : citation["end"]] == citation["quote"]

    deleted = http.delete(f"/v1/documents/{doc_id}")
    assert deleted.status_code == 200 and deleted.json()["chunks_removed"] >= 1
    assert doc_id not in cited_docs(ask(http, BRIDGE_QUESTION))
    assert http.get(f"/v1/documents/{doc_id}").status_code == 404
    gone = http.delete(f"/v1/documents/{doc_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "document_not_found"


def test_uploaded_files_are_indexed_under_their_names_and_metadata_fields_apply(http: httpx.Client) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 8, "The Quillmere dam holds 48 million cubic metres of water, its operator said in 2019.")
    files = [
        ("file", ("bridge.md", BRIDGE.encode(), "text/markdown")),
        ("file", ("quillmere-dam.pdf", bytes(pdf.output()), "application/pdf")),
    ]
    response = http.post("/v1/documents", files=files)
    assert response.status_code == 201, response.text
    assert sorted(response.json()["added"]) == ["bridge", "quillmere-dam"]
    assert cited_docs(ask(http, "How much water does the Quillmere dam hold?")) == {"quillmere-dam"}
    assert cited_docs(ask(http, BRIDGE_QUESTION)) == {"bridge"}

    one = http.post(
        "/v1/documents",
        files={"file": ("notes.txt", b"The Zorvath Bridge toll is four crowns.", "text/plain")},
        data={"title": "Toll notice", "source": "Kelmora council", "published_at": "2021-05-01"},
    )
    assert one.status_code == 201
    info = http.get("/v1/documents/notes").json()
    assert (info["title"], info["source"], info["published_at"]) == ("Toll notice", "Kelmora council", "2021-05-01")


@pytest.mark.parametrize(
    ("files", "status", "code", "says"),
    [
        ({"file": ("report.docx", b"PK\x03\x04 not really", "application/octet-stream")}, 415,
         "unsupported_file_type", "report.docx: unsupported file type .docx"),
        ({"file": ("noext", b"hello", "text/plain")}, 415, "unsupported_file_type", "(none)"),
        ({"file": ("blob.txt", b"abc\x00\x01\x02", "text/plain")}, 400, "invalid_document", "binary"),
        ({"file": ("empty.txt", b"  \n", "text/plain")}, 400, "invalid_document", "empty"),
        ({"file": ("latin.txt", "caf\u00e9".encode("latin-1"), "text/plain")}, 400, "invalid_document", "UTF-8"),
        ({"file": ("broken.pdf", b"%PDF-1.4 garbage", "application/pdf")}, 400, "invalid_document", "PDF"),
        ({"other": ("a.txt", b"text", "text/plain")}, 400, "missing_file", "'file'"),
    ],
)
def test_bad_uploads_get_a_4xx_naming_the_file_and_index_nothing(
    http: httpx.Client, files: dict[str, Any], status: int, code: str, says: str
) -> None:
    before = doc_ids(http)
    response = http.post("/v1/documents", files=files)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and says in error["message"]
    assert doc_ids(http) == before


def test_one_bad_file_rejects_the_whole_upload(http: httpx.Client) -> None:
    files = [("file", ("good.txt", b"A perfectly good document.", "text/plain")), ("file", ("bad.exe", b"MZ", ""))]
    response = http.post("/v1/documents", files=files)
    assert response.status_code == 415 and "bad.exe" in response.json()["error"]["message"]
    assert "good" not in doc_ids(http)


def test_oversized_uploads_are_refused_whether_declared_or_streamed(http: httpx.Client) -> None:
    big = b"word " * (UPLOAD_LIMIT // 5 + 10)
    response = http.post("/v1/documents", files={"file": ("big.txt", big, "text/plain")})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large" and "big.txt" in response.json()["error"]["message"]

    huge = b"word " * (UPLOAD_LIMIT // 2)
    declared = http.post("/v1/documents", files={"file": ("huge.txt", huge, "text/plain")})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit must still hold while reading
        yield b'{"title": "Huge", "text": "'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"}'

    streamed = http.post("/v1/documents", content=chunked(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "request_too_large"
    assert "big" not in doc_ids(http) and "Huge" not in doc_ids(http)


@pytest.mark.parametrize(
    ("kwargs", "status", "says"),
    [
        ({"json": {"title": "No text"}}, 422, "text: Field required"),
        ({"json": {"title": "T", "text": ""}}, 422, "text"),
        ({"json": {"title": "T", "text": "Body.", "published_at": "yesterday"}}, 422, "published_at"),
        ({"json": {"title": "T", "text": "Body.", "author": "me"}}, 422, "author"),
        ({"json": {"title": "T", "text": "Body.", "id": "a b c"}}, 422, "id"),
        ({"json": {"title": "T", "text": "Body.", "id": ""}}, 422, "id"),
        ({"json": {"title": "T", "text": "Body.", "id": ".."}}, 422, "id"),
        ({"json": {"title": "T", "text": "Body.", "id": "x" * 201}}, 422, "id"),
        ({"json": {"title": "T", "text": "Body.", "id": "\u00fcn\u00efc\u00f8d\u00e9"}}, 422, "id"),
        ({"json": {"title": "  ", "text": "Body."}}, 422, "title"),
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
        ({"content": b"plain words", "headers": {"Content-Type": "text/plain"}}, 415, "multipart/form-data"),
    ],
)
def test_bad_json_documents_get_a_4xx(http: httpx.Client, kwargs: dict[str, Any], status: int, says: str) -> None:
    response = http.post("/v1/documents", **kwargs)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


def test_unknown_documents_are_404(http: httpx.Client) -> None:
    response = http.get("/v1/documents/no-such-doc")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "no document with id 'no-such-doc'",
        "type": "not_found_error",
        "param": "doc_id",
        "code": "document_not_found",
    }
