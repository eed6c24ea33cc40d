"""API keys (CITEQA_API_KEYS), admin keys for document changes (CITEQA_ADMIN_KEYS) and CORS origins."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from live_app import LiveServer, sample_qa, serve

from index.embedding import Embedder

READER, ADMIN = "reader-key-1", "admin-key-1"
ORIGIN = "https://chat.example"
ASK = {"question": "Who was killed by a mortar shell?"}
CHAT = {"model": "extractive", "messages": [{"role": "user", "content": ASK["question"]}]}
DOC = {"title": "Auth test note", "text": "The Brenmoor ferry runs twice a day.", "id": "auth-note"}


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    qa = sample_qa(embedder, tmp_path_factory)
    with serve(qa, api_keys=f"{READER}, reader-key-2", admin_keys=ADMIN, cors_origins=ORIGIN) as server:
        yield server


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/ask", ASK),
        ("POST", "/v1/chat/completions", CHAT),
        ("GET", "/v1/models", None),
        ("GET", "/v1/search?q=mortar", None),
        ("GET", "/v1/documents", None),
        ("GET", "/v1/documents/004_f819b13ffc05e965", None),
        ("POST", "/v1/documents", DOC),
        ("DELETE", "/v1/documents/004_f819b13ffc05e965", None),
    ],
)
def test_every_v1_route_needs_a_key(live: LiveServer, method: str, path: str, body: dict | None) -> None:
    with live.client() as http:
        missing = http.request(method, path, json=body)
        wrong = http.request(method, path, json=body, headers=bearer("guess"))
        basic = http.request(method, path, json=body, headers={"Authorization": "Basic cmVhZGVyOmtleQ=="})
    for response, code in ((missing, "missing_api_key"), (wrong, "invalid_api_key"), (basic, "missing_api_key")):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["type"] == "authentication_error"
        assert response.json()["error"]["code"] == code


def test_reader_keys_read_and_admin_keys_also_write(live: LiveServer) -> None:
    with live.client(**bearer("reader-key-2")) as reader, live.client(**bearer(ADMIN)) as admin:
        assert reader.post("/v1/ask", json=ASK).status_code == 200
        assert reader.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert admin.post("/v1/ask", json=ASK).status_code == 200

        refused = reader.post("/v1/documents", json=DOC)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "admin_key_required"
        assert reader.delete("/v1/documents/004_f819b13ffc05e965").status_code == 403

        assert admin.post("/v1/documents", json=DOC).status_code == 201
        assert reader.get("/v1/documents/auth-note").status_code == 200
        assert admin.delete("/v1/documents/auth-note").status_code == 200


def test_the_openai_client_sends_its_key_as_a_bearer_token(live: LiveServer) -> None:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key=READER, max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["extractive"]
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(**CHAT)
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "invalid_api_key"


def test_service_routes_and_the_page_need_no_key(live: LiveServer) -> None:
    with live.client() as http:
        for path in ("/healthz", "/readyz", "/metrics", "/", "/static/app.js", "/openapi.json"):
            assert http.get(path).status_code == 200, path


def test_openapi_declares_the_bearer_scheme(live: LiveServer) -> None:
    with live.client() as http:
        spec = http.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"HTTPBearer": []} in spec["paths"]["/v1/ask"]["post"]["security"]


def test_cors_allows_the_configured_origin_only(live: LiveServer) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    with live.client() as http:
        allowed = http.options("/v1/chat/completions", headers={"Origin": ORIGIN, **preflight})
        other = http.options("/v1/chat/completions", headers={"Origin": "https://evil.example", **preflight})
        simple = http.post("/v1/ask", json=ASK, headers={"Origin": ORIGIN, **bearer(READER)})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN


def test_admin_keys_alone_leave_reading_open(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> None:
    with serve(sample_qa(embedder, tmp_path_factory), admin_keys=ADMIN) as server, server.client() as http:
        assert http.post("/v1/ask", json=ASK).status_code == 200
        assert "access-control-allow-origin" not in http.get("/v1/models", headers={"Origin": ORIGIN}).headers
        assert http.post("/v1/documents", json=DOC).status_code == 401
        assert http.post("/v1/documents", json=DOC, headers=bearer(ADMIN)).status_code == 201
        assert http.delete("/v1/documents/auth-note").status_code == 401
        assert http.delete("/v1/documents/auth-note", headers=bearer(ADMIN)).status_code == 200


def test_an_unauthenticated_client_learns_nothing_about_documents(live: LiveServer) -> None:
    with live.client() as http:
        response = http.get("/v1/documents/004_f819b13ffc05e965")
    assert response.status_code == 401
    assert "Global News" not in response.text
