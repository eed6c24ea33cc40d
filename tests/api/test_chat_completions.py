"""The official ``openai`` client against /v1/chat/completions and /v1/models, plain and streaming."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from conftest import DOC_DEFEAT, DOC_RETAKE
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from live_app import LiveServer, sample_qa, serve

from index.embedding import Embedder
from index.errors import StoreError
from qa.service import QAService

MORTAR = "Who was killed by a mortar shell?"


@pytest.fixture(scope="module")
def live(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(sample_qa(embedder, tmp_path_factory)) as server:
        yield server


@pytest.fixture()
def client(live: LiveServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="not-needed", max_retries=0) as c:
        yield c


def user(content: str) -> dict[str, Any]:
    return {"role": "user", "content": content}


def test_plain_completion_carries_the_answer_references_and_structured_citations(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="extractive", messages=[user(MORTAR)])
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert "Samadi" in message.content and "[1]" in message.content
    answer_part, references = message.content.split("\n\nReferences:\n")
    extra = completion.model_extra or {}
    citations = extra["citations"]
    assert citations and citations[0]["n"] == 1
    for c in citations:
        assert f"[{c['n']}] {c['title']}" in references and c["quote"] in references
    assert extra["citeqa"]["refused"] is False and extra["citeqa"]["citations"] == citations
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streaming_sends_openai_chunks_and_citations_in_the_final_one(client: openai.OpenAI) -> None:
    plain = client.chat.completions.create(model="extractive", messages=[user(MORTAR)])
    stream = client.chat.completions.create(
        model="extractive", messages=[user(MORTAR)], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({chunk.id for chunk in chunks}) == 1
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert content == plain.choices[0].message.content
    assert sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content) > 3  # really in pieces
    final = next(ch for ch in chunks if ch.choices and ch.choices[0].finish_reason == "stop")
    assert (final.model_extra or {})["citations"] == (plain.model_extra or {})["citations"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens  # type: ignore[union-attr]


def test_the_raw_stream_is_server_sent_events_ending_with_done(live: LiveServer) -> None:
    body = {"model": "extractive", "stream": True, "messages": [user("Did ISIS hold Boukamal?")]}
    with live.client() as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    final = json.loads(lines[-2].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["citeqa"]["has_conflict"] is True
    assert {side["doc_id"] for side in final["citeqa"]["conflicts"]} == {DOC_RETAKE, DOC_DEFEAT}


def test_earlier_turns_resolve_a_follow_up_and_references_are_not_fed_back(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model="extractive", messages=[user(MORTAR)])
    previous = first.choices[0].message.content
    assert previous is not None
    follow = client.chat.completions.create(
        model="extractive",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            user(MORTAR),
            {"role": "assistant", "content": previous},
            user("Who reported that?"),
        ],
    )
    answer = (follow.model_extra or {})["citeqa"]
    assert "mortar" in answer["query"]
    assert "References" not in answer["query"] and "helpful assistant" not in answer["query"]
    assert not answer["refused"]
    assert DOC_DEFEAT in {c["doc_id"] for c in answer["citations"]}


def test_text_content_parts_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": [{"type": "text", "text": MORTAR}]}]
    )
    assert "Samadi" in (completion.choices[0].message.content or "")


def test_a_refusal_says_so_and_lists_see_also_apart_from_any_answer(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="extractive", messages=[user("What is the capital of France?")])
    content = completion.choices[0].message.content or ""
    extra = completion.model_extra or {}
    assert content.startswith("The indexed documents do not answer this.")
    assert "References:" not in content
    assert extra["citeqa"]["refused"] is True and extra["citations"] == []


def test_models_lists_the_answerers(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["extractive"]


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"model": "gpt-4o", "messages": [user(MORTAR)]}, openai.NotFoundError, "gpt-4o"),
        ({"model": "extractive", "messages": []}, openai.BadRequestError, "messages"),
        ({"model": "extractive", "messages": [user("  ")]}, openai.BadRequestError, "content"),
        ({"model": "extractive", "messages": [user("why " * 600)]}, openai.BadRequestError, "limit"),
        ({"model": "extractive", "messages": [{"role": "assistant", "content": "Hi"}]}, openai.BadRequestError,
         "no user message"),
        ({"model": "extractive", "messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]},
         openai.BadRequestError, "messages.0"),
        ({"model": "extractive", "messages": [{"role": "user"}]}, openai.BadRequestError, "content"),
        ({"model": "extractive", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]},
         openai.BadRequestError, "content"),
        ({"model": "extractive", "messages": [user(MORTAR)], "n": 2}, openai.BadRequestError, "n:"),
    ],
)
def test_bad_requests_raise_the_openai_clients_errors(
    client: openai.OpenAI, kwargs: dict[str, Any], error: type[openai.APIStatusError], says: str
) -> None:
    with pytest.raises(error) as caught:
        client.chat.completions.create(**kwargs)
    body = caught.value.body
    assert isinstance(body, dict) and says in body["message"]
    assert body["type"] in ("invalid_request_error", "not_found_error")
    assert body.get("param")


def test_error_body_has_openais_shape(live: LiveServer) -> None:
    with live.client() as http:
        response = http.post("/v1/chat/completions", json={"model": "nope", "messages": [user("hi")]})
        malformed = http.post("/v1/chat/completions", json={"model": "extractive", "messages": "hi"})
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "the model 'nope' does not exist; available: extractive",
            "type": "not_found_error",
            "param": "model",
            "code": "model_not_found",
        }
    }
    assert malformed.status_code == 400 and malformed.json()["error"]["param"] == "messages"


def test_an_llm_answerer_appears_as_a_model_when_configured(
    live: LiveServer, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shared = sample_qa(embedder, tmp_path_factory)
    fake = FakeListChatModel(responses=["Iranian Brig. Gen. Khayrallah Samadi was killed by a mortar shell [1]."])
    qa = QAService(index=shared.index, settings=shared.settings, chat_model=fake)
    with serve(qa) as server, openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["extractive", "llm"]
        completion = client.chat.completions.create(model="llm", messages=[user(MORTAR)])
    answer = (completion.model_extra or {})["citeqa"]
    assert answer["answerer"] in ("llm", "extractive")  # extractive only as a reported fallback
    assert answer["answerer"] == "llm" or answer["notice"]
    assert "Samadi" in (completion.choices[0].message.content or "")


class HeldAnswers(QAService):
    """The real service, except that answering waits until the test lets it go."""

    def __init__(self, shared: QAService) -> None:
        super().__init__(index=shared.index, settings=shared.settings)
        self.release = threading.Event()

    def ask(self, question: str, **kwargs: Any) -> Any:
        assert self.release.wait(timeout=60), "the test never released the answer"
        return super().ask(question, **kwargs)


def test_a_stream_starts_before_the_answer_is_built(
    embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    qa = HeldAnswers(sample_qa(embedder, tmp_path_factory))
    body = {"model": "extractive", "stream": True, "messages": [user(MORTAR)]}
    with serve(qa) as server, server.client() as http, http.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        first = next(line for line in lines if line)
        assert not qa.release.is_set()  # the answer is still being held back
        assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
        qa.release.set()
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    final = json.loads(rest[-2].removeprefix("data: "))
    assert final["choices"][0]["finish_reason"] == "stop" and final["citations"]


def test_an_error_after_the_stream_started_ends_it_with_an_error_event(
    embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    class Unreachable(QAService):
        def ask(self, question: str, **kwargs: Any) -> Any:
            raise StoreError("Chroma is not reachable: connection refused")

    shared = sample_qa(embedder, tmp_path_factory)
    body = {"model": "extractive", "stream": True, "messages": [user(MORTAR)]}
    with serve(Unreachable(index=shared.index, settings=shared.settings)) as server, server.client() as http:
        events = [line for line in http.post("/v1/chat/completions", json=body).text.splitlines() if line]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["code"] == "store_unavailable"
