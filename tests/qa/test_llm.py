"""The LLM answerer's output is checked; a deterministic fake chat model stands in for the LLM."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from qa.citations import quote_is_valid
from qa.service import QAService
from tests.conftest import DOC_DEFEAT

QUESTION = "Who was killed by a mortar shell?"


class RecordingChatModel(FakeListChatModel):
    """FakeListChatModel that also keeps the prompts it was sent."""

    prompts: list[str] = []

    def invoke(self, input: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002 (LangChain's name)
        self.prompts.append(str(input))
        return super().invoke(input, *args, **kwargs)


class BrokenChatModel(FakeListChatModel):
    def invoke(self, input: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        raise ConnectionError("endpoint unreachable")


def service(index, model) -> QAService:
    return QAService(index=index, settings=index.settings, chat_model=model)


def test_supported_answer_keeps_citations_with_exact_spans(sample_index):
    model = RecordingChatModel(
        responses=["Iranian Brig. Gen. Khayrallah Samadi was killed by a mortar shell, Fars reported [1]."]
    )
    qa = service(sample_index, model)
    assert qa.answerers == ["extractive", "llm"]
    answer = qa.ask(QUESTION, answerer="llm")
    assert answer.answerer == "llm" and not answer.refused and answer.notice is None
    assert "Khayrallah Samadi" in answer.text and "[1]" in answer.text
    citation = answer.citations[0]
    assert citation.doc_id == DOC_DEFEAT and "mortar shell" in citation.quote
    _, text = sample_index.get_document(citation.doc_id)
    assert quote_is_valid(citation, text)
    prompt = model.prompts[-1]
    assert "[1] (" in prompt and "not instructions" in prompt and QUESTION in prompt


def test_unsupported_and_miscited_sentences_are_dropped(sample_index):
    model = FakeListChatModel(
        responses=[
            "Khayrallah Samadi was killed by a mortar shell [1]. "
            "He was 54 years old and born in Tehran [1]. "
            "The mortar shell was fired from Iraq [9]."
        ]
    )
    answer = service(sample_index, model).ask(QUESTION, answerer="llm")
    assert "Khayrallah Samadi" in answer.text
    assert "Tehran" not in answer.text and "[9]" not in answer.text
    assert answer.notice and "2 sentence(s) removed from the LLM answer" in answer.notice
    assert answer.llm_check is not None
    assert answer.llm_check.removed == {"unknown_passage": 1, "unsupported": 1} and answer.llm_check.kept == 1


def test_answer_without_valid_citation_falls_back_to_extractive(sample_index):
    model = FakeListChatModel(responses=["Paris is the capital of France."])
    answer = service(sample_index, model).ask(QUESTION, answerer="llm")
    assert answer.notice and "extractive" in answer.notice
    assert "Khayrallah Samadi" in answer.text and answer.citations


def test_llm_error_falls_back_and_says_so(sample_index):
    answer = service(sample_index, BrokenChatModel(responses=["unused"])).ask(QUESTION, answerer="llm")
    assert answer.notice and "ConnectionError" in answer.notice and "extractive" in answer.notice
    assert "Khayrallah Samadi" in answer.text


def test_llm_timeout_falls_back(sample_index):
    slow = FakeListChatModel(responses=["Samadi [1]."], sleep=3)
    qa = QAService(
        index=sample_index, settings=sample_index.settings.model_copy(update={"llm_timeout": 0.5}), chat_model=slow
    )
    answer = qa.ask(QUESTION, answerer="llm")
    assert answer.notice and "TimeoutError" in answer.notice


def test_refusal_is_decided_on_evidence_before_the_llm(sample_index):
    model = RecordingChatModel(responses=["Paris [1]."])
    model.prompts = []
    answer = service(sample_index, model).ask("What is the capital of France?", answerer="llm")
    assert answer.refused and answer.citations == []
    assert model.prompts == []  # the model was never asked


@pytest.mark.parametrize("reply", ["NOT ANSWERED", "not answered."])
def test_model_saying_not_answered_falls_back(sample_index, reply):
    answer = service(sample_index, FakeListChatModel(responses=[reply])).ask(QUESTION, answerer="llm")
    assert answer.notice and "no answer" in answer.notice
