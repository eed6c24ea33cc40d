"""What a hostile but fair client tried: ids that collide, odd text, odd methods; none may cost data or a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from conftest import DOC_DEFEAT
from live_app import LiveServer, keep_only_the_sample, sample_qa, serve

from index.embedding import Embedder

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


@pytest.fixture()
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client
        keep_only_the_sample(client)


def post_json(http: httpx.Client, url: str, body: Any) -> httpx.Response:
    return http.post(url, content=json.dumps(body), headers=JSON)  # ASCII escapes keep lone surrogates


def test_names_that_slug_alike_never_overwrite_each_other(http: httpx.Client) -> None:
    ids = []
    for title in ("a/b/c", "a b c", "a-b-c"):
        added = post_json(http, "/v1/documents", {"title": title, "text": f"Note filed under {title}."})
        assert added.status_code == 201, added.text
        ids += added.json()["added"]
    assert len(set(ids)) == 3 and "a-b-c" in ids
    for doc_id, title in zip(ids, ("a/b/c", "a b c", "a-b-c"), strict=True):
        assert http.get(f"/v1/documents/{doc_id}").json()["title"] == title


def test_an_uploaded_file_name_with_directories_keeps_them_in_its_id(http: httpx.Client) -> None:
    plain = http.post("/v1/documents", files={"file": ("passwd.txt", b"The plain passwd note.", "text/plain")})
    sneaky = http.post("/v1/documents", files={"file": ("../../etc/passwd.txt", b"The sneaky note.", "text/plain")})
    assert plain.json()["added"] == ["passwd"]
    (sneaky_id,) = sneaky.json()["added"]
    assert sneaky_id != "passwd" and sneaky_id.startswith("etc-passwd-")
    assert http.get("/v1/documents/passwd").json()["text"] == "The plain passwd note."


def test_an_explicit_id_outside_the_safe_pattern_is_a_422_naming_id(http: httpx.Client) -> None:
    for bad in ("", " ", ".", "..", "a/b", "x" * 201, "ünïcødé"):
        response = post_json(http, "/v1/documents", {"id": bad, "title": "T", "text": "Body."})
        assert response.status_code == 422 and response.json()["error"]["param"] == "id", bad
    form = http.post("/v1/documents", files={"file": ("n.txt", b"Body.", "text/plain")}, data={"id": "a b"})
    assert form.status_code == 400 and form.json()["error"]["param"] == "id"


def test_no_server_paths_in_document_listings(http: httpx.Client) -> None:
    for doc in http.get("/v1/documents").json()["documents"]:
        assert "path" not in doc and "/" not in (doc["file"] or "")
    one = http.get(f"/v1/documents/{DOC_DEFEAT}").json()
    assert one["file"] == f"{DOC_DEFEAT}.txt" and "path" not in one


def test_an_empty_document_id_is_not_the_list(http: httpx.Client) -> None:
    assert http.get("/v1/documents/").status_code == 404
    assert http.delete("/v1/documents/").status_code == 404


def test_options_and_405_name_every_method_of_the_path(http: httpx.Client) -> None:
    expected = (("/v1/documents", "GET, OPTIONS, POST"), (f"/v1/documents/{DOC_DEFEAT}", "DELETE, GET, OPTIONS"),
                ("/v1/ask", "OPTIONS, POST"))
    for path, allow in expected:
        options = http.options(path)
        assert options.status_code == 204 and options.headers["allow"] == allow, path
        wrong = http.put(path)
        assert wrong.status_code == 405 and wrong.headers["allow"] == allow
        assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_the_schema_declares_no_auth_when_no_keys_are_configured(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    assert "securitySchemes" not in schema.get("components", {})
    assert not any("security" in op for ops in schema["paths"].values() for op in ops.values())


def test_loose_types_are_refused_on_the_openai_route(http: httpx.Client) -> None:
    base = {"model": "extractive", "messages": [{"role": "user", "content": "Who was killed?"}]}
    for extra in ({"stream": "yes"}, {"top_k": "5"}, {"n": "1"}, {"filters": {"date_to": 0}}):
        response = post_json(http, "/v1/chat/completions", {**base, **extra})
        assert response.status_code == 400, extra


BAD_TEXT = ["Who \ud800 killed?", "Who\x00 killed?", "\udfff"]


def _ask_bodies(bad: str) -> list[tuple[str, dict[str, Any]]]:
    message = {"role": "user", "content": bad}
    return [
        ("/v1/ask", {"question": bad}),
        ("/v1/ask", {"question": "Who?", "history": [message]}),
        ("/v1/ask", {"question": "Who?", "filters": {"sources": [bad], "doc_ids": [bad]}}),
        ("/v1/ask", {"question": "Who?", "answerer": bad}),
        ("/v1/chat/completions", {"model": "extractive", "messages": [message]}),
        ("/v1/chat/completions", {"model": "extractive", "messages": [{"role": "user", "content": [
            {"type": "text", "text": bad}]}]}),
        ("/v1/chat/completions", {"model": bad, "messages": [{"role": "user", "content": "Who?"}]}),
        ("/v1/chat/completions", {"model": "extractive", "stream": True, "messages": [message]}),
        ("/v1/documents", {"title": bad, "text": "Body."}),
        ("/v1/documents", {"title": "T", "text": bad}),
        ("/v1/documents", {"title": "T", "text": "Body.", "id": bad}),
        ("/v1/documents", {"title": "T", "text": "Body.", "source": bad, "url": bad}),
        ("/v1/documents", {"title": "T", "text": "Body.", "published_at": bad}),
    ]


@pytest.mark.parametrize("bad", BAD_TEXT, ids=["surrogate", "nul", "lone-low-surrogate"])
def test_no_text_field_makes_a_500(http: httpx.Client, bad: str) -> None:
    for url, body in _ask_bodies(bad):
        response = post_json(http, url, body)
        assert 400 <= response.status_code < 500, (url, body, response.text)
    raw = quote(bad.encode("utf-8", "surrogatepass"))  # a surrogate as the bytes a client would send
    for query in (f"q={raw}", f"q=Abu+Kamal&source={raw}", f"q=Abu+Kamal&doc_id={raw}"):
        assert http.get(f"/v1/search?{query}").status_code < 500, query
    if "\x00" in bad:  # multipart cannot carry a lone surrogate at all
        upload = http.post("/v1/documents", files={"file": ("n.txt", b"Body.", "text/plain")}, data={"title": bad})
        assert 400 <= upload.status_code < 500


def test_invalid_utf8_bodies_are_a_4xx(http: httpx.Client) -> None:
    for url in ("/v1/ask", "/v1/chat/completions", "/v1/documents"):
        response = http.post(url, content=b'{"question": "Who \xff\xfe killed?"}', headers=JSON)
        assert 400 <= response.status_code < 500, (url, response.text)
    upload = http.post("/v1/documents", files={"file": ("bad.txt", b"caf\xe9 \xff", "text/plain")})
    assert upload.status_code == 400
    assert http.get("/v1/search?q=%FF%FE").status_code < 500


def test_openai_clients_extra_fields_and_turn_shapes_are_accepted(http: httpx.Client) -> None:
    body = {
        "model": "extractive", "n": 1, "user": "someone", "temperature": 0.2, "seed": 7,
        "stream_options": {"include_usage": True, "include_obfuscation": False},
        "messages": [{"role": "system"}, {"role": "user", "content": "Who was killed by a mortar shell?", "name": "u"},
                     {"role": "assistant", "content": None, "tool_calls": []}],
    }
    response = post_json(http, "/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    assert "Samadi" in response.json()["choices"][0]["message"]["content"]


def test_options_is_the_same_with_and_without_cors(
    embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    origin = "https://app.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    with serve(sample_qa(embedder, tmp_path_factory), cors_origins=origin) as server, server.client() as client:
        plain = client.options("/v1/documents")
        assert plain.status_code == 204 and plain.headers["allow"] == "GET, OPTIONS, POST"
        cors = client.options("/v1/documents", headers=preflight)
        assert cors.status_code == 200 and cors.headers["access-control-allow-origin"] == origin
        assert "POST" in cors.headers["access-control-allow-methods"]
    with serve(sample_qa(embedder, tmp_path_factory)) as server, server.client() as client:
        no_cors = client.options("/v1/documents", headers=preflight)
        assert no_cors.status_code == 204 and no_cors.headers["allow"] == "GET, OPTIONS, POST"
        assert "access-control-allow-origin" not in no_cors.headers


def test_an_unconfigured_answerer_is_a_404_like_an_unknown_model(http: httpx.Client) -> None:
    response = post_json(http, "/v1/ask", {"question": "Who was killed?", "answerer": "llm"})
    assert response.status_code == 404 and response.json()["error"]["param"] == "answerer"


def test_upload_metadata_fields_that_are_sent_must_be_valid(http: httpx.Client) -> None:
    file = {"file": ("n.txt", b"Body of the note.", "text/plain")}
    for field, value in (("id", ""), ("title", "  "), ("source", ""), ("published_at", "2020-01-01T10:00:00")):
        response = http.post("/v1/documents", files=file, data={field: value})
        assert response.status_code == 400 and response.json()["error"]["param"] == field, (field, response.text)
    assert "n" not in [d["id"] for d in http.get("/v1/documents").json()["documents"]]
