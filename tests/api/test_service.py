"""Health, readiness, Prometheus metrics, the OpenAPI document and the chat page's files."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from live_app import LiveServer, sample_qa, serve

from index.embedding import Embedder


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


@pytest.fixture()
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    found = re.search("^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_health_and_readiness(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["chroma_reachable"] is True


def test_metrics_count_requests_per_route_refusals_and_index_size(http: httpx.Client, live: LiveServer) -> None:
    before = http.get("/metrics").text
    http.post("/v1/ask", json={"question": "Who was killed by a mortar shell?"})
    http.post("/v1/ask", json={"question": "What is the capital of France?"})
    http.post("/v1/ask", json={"question": ""})
    http.get("/v1/documents/missing-doc")
    response = http.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text

    def grew(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert grew("citeqa_http_requests_total", method="POST", route="/v1/ask", status="200") == 2
    assert grew("citeqa_http_requests_total", method="POST", route="/v1/ask", status="422") == 1  # empty question
    # routes are labelled by template, not by the id in the URL
    assert grew("citeqa_http_requests_total", method="GET", route="/v1/documents/{doc_id}", status="404") == 1
    assert "missing-doc" not in after
    assert grew("citeqa_http_request_duration_seconds_count", method="POST", route="/v1/ask") == 3
    assert grew("citeqa_answer_refusals_total", answerer="extractive") == 1
    assert grew("citeqa_answers_total", answerer="extractive", outcome="answered") == 1
    chunks = len(live.qa.index.chunk_ids())
    assert metric(after, "citeqa_index_documents") == 2
    assert metric(after, "citeqa_index_chunks") == chunks > 0
    assert metric(after, "citeqa_index_disk_bytes") > 0


def test_openapi_documents_every_route_with_examples(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    expected = {
        ("post", "/v1/ask"), ("get", "/v1/search"), ("post", "/v1/chat/completions"), ("get", "/v1/models"),
        ("post", "/v1/documents"), ("get", "/v1/documents"), ("get", "/v1/documents/{doc_id}"),
        ("delete", "/v1/documents/{doc_id}"), ("get", "/healthz"), ("get", "/readyz"), ("get", "/metrics"),
    }
    assert {(m, p) for p, ops in paths.items() for m in ops} == expected
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("summary") and op.get("description"), (method, path)
    schemas = spec["components"]["schemas"]
    assert schemas["AskRequest"]["examples"][0] == {"question": "Who controls Abu Kamal?"}
    assert schemas["ChatCompletionRequest"]["examples"]
    upload = paths["/v1/documents"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(upload)
    assert "text/event-stream" in paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert paths["/v1/ask"]["post"]["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert http.get("/docs").status_code == 200


def test_the_chat_page_and_its_assets_are_served_without_external_references(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assets = [http.get(path) for path in ("/static/app.js", "/static/app.css")]
    assert all(a.status_code == 200 for a in assets)
    for text in [page.text] + [a.text for a in assets]:
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
        assert "@import" not in text and "cdn" not in text.lower()


def test_two_apps_in_one_process_keep_separate_metrics(
    http: httpx.Client, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with serve(sample_qa(embedder, tmp_path_factory)) as other, other.client() as client:
        client.post("/v1/ask", json={"question": "Who is Rakan Said?"})
        mine = client.get("/metrics").text
    assert metric(mine, "citeqa_http_requests_total", method="POST", route="/v1/ask", status="200") == 1
