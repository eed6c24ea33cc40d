"""POST /v1/ask and GET /v1/search over real HTTP, on the sample corpus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE
from live_app import LiveServer, cited_docs, sample_qa, serve

from index.embedding import Embedder


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


@pytest.fixture()
def http(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as client:
        yield client


def ask(http: httpx.Client, question: str, **extra: Any) -> dict[str, Any]:
    response = http.post("/v1/ask", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_an_answer_cites_spans_that_are_verbatim_in_the_documents(http: httpx.Client) -> None:
    answer = ask(http, "Who was killed by a mortar shell?")
    assert not answer["refused"]
    assert "Samadi" in answer["text"] and "[1]" in answer["text"]
    assert answer["citations"]
    for citation in answer["citations"]:
        document = http.get(f"/v1/documents/{citation['doc_id']}").json()
        assert document["text"][citation["start"] : citation["end"]] == citation["quote"]
    assert {"retrieve", "answer", "total"} <= set(answer["timings_ms"])


def test_conflicting_reports_come_back_side_by_side(http: httpx.Client) -> None:
    answer = ask(http, "Did ISIS hold Boukamal?")
    assert answer["has_conflict"]
    assert {side["doc_id"] for side in answer["conflicts"]} == {DOC_RETAKE, DOC_DEFEAT}
    numbers = {c["n"] for c in answer["citations"]}
    assert all(set(side["citations"]) <= numbers for side in answer["conflicts"])


def test_a_question_the_documents_do_not_answer_is_refused(http: httpx.Client) -> None:
    answer = ask(http, "What is the capital of France?")
    assert answer["refused"] is True
    assert answer["citations"] == []
    assert "do not answer" in answer["text"]


def test_history_resolves_a_follow_up(http: httpx.Client) -> None:
    history = [
        {"role": "user", "content": "Who was killed by a mortar shell?"},
        {"role": "assistant", "content": "Iranian Brig. Gen. Khayrallah Samadi was killed by a mortar shell [1]."},
    ]
    answer = ask(http, "Who reported that?", history=history)
    assert "mortar" in answer["query"]
    assert not answer["refused"]
    assert DOC_DEFEAT in cited_docs(answer)


def test_filters_restrict_the_evidence(http: httpx.Client) -> None:
    question = "Who was killed by a mortar shell?"
    assert cited_docs(ask(http, question, filters={"doc_ids": [DOC_DEFEAT]})) == {DOC_DEFEAT}
    assert DOC_DEFEAT not in cited_docs(ask(http, question, filters={"doc_ids": [DOC_RETAKE]}))
    later = ask(http, question, filters={"date_from": "2018-01-01"})
    assert later["refused"] and later["citations"] == []


def test_search_returns_ranked_passages_with_both_retrievers_scores(http: httpx.Client) -> None:
    response = http.get("/v1/search", params={"q": "Boukamal mass graves bodies", "k": 3})
    assert response.status_code == 200
    passages = response.json()["passages"]
    assert 1 <= len(passages) <= 3
    scores = [p["score"] for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert any(p["dense_score"] is not None and p["lexical_score"] is not None for p in passages)
    only = http.get("/v1/search", params={"q": "Boukamal", "doc_id": DOC_RETAKE}).json()["passages"]
    assert only and {p["doc_id"] for p in only} == {DOC_RETAKE}


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"question": "   \n "}, 422, "question"),
        ({"question": ""}, 422, "question"),
        ({"question": "Who?", "top_k": "5"}, 422, "top_k"),
        ({"question": "Who?", "filters": {"date_to": 0}}, 422, "filters.date_to"),
        ({"question": "Who?", "filters": {"date_from": "2020-02-01", "date_to": "2020-01-01"}}, 422, "after"),
        ({"question": "Who \ud800 killed?"}, 422, "question"),
        ({"question": "Who\u0000 killed?"}, 422, "question"),
        ({"question": "Who?", "history": [{"role": "user", "content": "\udfff"}]}, 422, "history.0.content"),
        ({"question": "why " * 600}, 400, "limit is 2000"),
        ({}, 422, "question: Field required"),
        ({"question": "Who?", "colour": "red"}, 422, "colour"),
        ({"question": "Who?", "top_k": 0}, 422, "top_k"),
        ({"question": "Who?", "top_k": 51}, 422, "top_k"),
        ({"question": "Who?", "answerer": "gpt-9"}, 422, "answerer"),
        ({"question": "Who?", "filters": {"date_from": "last week"}}, 422, "filters.date_from"),
        ({"question": "Who?", "history": [{"role": "robot", "content": "x"}]}, 422, "history.0.role"),
        ({"question": 42}, 422, "question"),
    ],
)
def test_bad_questions_get_a_4xx_naming_the_problem(
    http: httpx.Client, body: dict[str, Any], status: int, says: str
) -> None:
    # json.dumps escapes to ASCII, so lone surrogates travel as "\ud800" the way a hostile client sends them
    response = http.post("/v1/ask", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert says in error["message"]
    assert error["type"] == "invalid_request_error"


def test_malformed_json_and_oversized_bodies_are_refused(http: httpx.Client) -> None:
    response = http.post("/v1/ask", content=b'{"question": "Who', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert "malformed JSON" in response.json()["error"]["message"]
    huge = b'{"question": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = http.post("/v1/ask", content=huge, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_search_needs_a_query(http: httpx.Client) -> None:
    response = http.get("/v1/search")
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "q"
    assert http.get("/v1/search", params={"q": " "}).status_code == 422
    assert http.get("/v1/search", params={"q": ""}).status_code == 422
    dates = {"q": "Abu Kamal", "date_from": "2020-02-01", "date_to": "2020-01-01"}
    assert http.get("/v1/search", params=dates).status_code == 422
    assert http.get("/v1/search", params={"q": "Abu Kamal", "date_to": "0"}).status_code == 422


def test_unknown_routes_and_methods_answer_in_the_error_shape(http: httpx.Client) -> None:
    missing = http.get("/v1/nothing-here")
    assert missing.status_code == 404 and "/v1/nothing-here" in missing.json()["error"]["message"]
    wrong = http.put("/v1/ask", json={})
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
