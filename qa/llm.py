"""Optional LLM answerer through any OpenAI-compatible endpoint, with its output checked.

The model sees numbered passages (the prompt lives in ``qa/prompts/answer_v<N>.txt``). Its answer is
not trusted: :mod:`qa.llm_check` judges every sentence (markers normalised, then unfinished,
instruction-following, uncited, miscited and unsupported sentences removed) and each kept marker
becomes a citation to the exact span of its passage that supports the sentence. On an error, a
timeout or no supported sentence, the extractive answer is returned with a notice that says why.
What the checker did is on ``Answer.llm_check`` (counts, never the removed text).
Refusal is decided on evidence before the model is called, never left to the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from importlib import resources
from typing import Any

from index.pipeline import DocumentIndex
from index.settings import Settings
from qa.citations import Citation, cite_span
from qa.llm_check import REASONS, CheckedReply, ReplyChecker, mentions
from qa.types import Answer, ConflictSide, LLMCheck, Message, Passage

PROMPT_VERSION = "v1"
NOT_ANSWERED = "NOT ANSWERED"
MAX_TOKENS = 256  # four brief sentences fit; a model that rambles is cut off (and its last sentence dropped)
# fallback reason code -> what the notice says
FALLBACKS = {
    "llm_error": "the LLM failed",
    "timeout": "the LLM did not answer in time",
    "not_answered": "the LLM found no answer in the passages",
    "empty": "the LLM's reply was empty",
    "nothing_supported": "the LLM answer had no sentence supported by a valid citation",
    "misses_answer": "the LLM answer does not state the answer the documents give",
}


def load_prompt(version: str = PROMPT_VERSION) -> str:
    return resources.files("qa").joinpath(f"prompts/answer_{version}.txt").read_text(encoding="utf-8")


def build_chat_model(settings: Settings) -> Any | None:
    """A LangChain ``ChatOpenAI`` client for the configured endpoint, or None when unconfigured."""
    if not settings.llm_base_url:
        return None
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=settings.llm_base_url,
        model=settings.llm_model or "default",
        api_key=settings.llm_api_key or "not-needed",  # type: ignore[arg-type]
        timeout=settings.llm_timeout,
        max_retries=1,
        temperature=0,
        # as max_tokens in the body: llama.cpp's server ignores max_completion_tokens (what the
        # client sends for its own max_tokens), and OpenAI-compatible servers all read max_tokens
        extra_body={"max_tokens": MAX_TOKENS},
    )


def format_passages(passages: Sequence[Passage]) -> str:
    blocks = []
    for i, p in enumerate(passages, start=1):
        origin = ", ".join(x for x in (p.title, p.source, p.published_at or "undated") if x)
        blocks.append(f"[{i}] ({origin})\n<<<\n{p.text}\n>>>")
    return "\n\n".join(blocks)


class LLMAnswerer:
    """Answers with a chat model, then keeps only what the cited passages support.

    Args:
        chat_model: a LangChain chat model (``ChatOpenAI`` or a fake with the same interface).
        index: the document index (sentence spans and vectors for citations).
        timeout: seconds to wait for the model.
    """

    name = "llm"

    def __init__(self, *, chat_model: Any, index: DocumentIndex, timeout: float = 30.0) -> None:
        self.chat_model = chat_model
        self.index = index
        self.timeout = timeout
        self.checker = ReplyChecker(index=index, prompt=load_prompt())

    def answer(
        self,
        *,
        question: str,
        query: str,
        passages: list[Passage],
        history: Sequence[Message],
        fallback: Answer,
    ) -> Answer:
        """Answer with the model; ``fallback`` (the extractive answer) covers every failure."""
        if fallback.refused or not passages:
            return replace(fallback, answerer=self.name)
        try:
            raw, truncated = self._call(question, passages, history)
        except TimeoutError as exc:
            return self._fallback(fallback, "timeout", f"TimeoutError: {exc}")
        except Exception as exc:  # any client or network error falls back
            return self._fallback(fallback, "llm_error", f"{type(exc).__name__}: {exc}")
        if not raw.strip():
            return self._fallback(fallback, "empty")
        if raw.strip().upper().startswith(NOT_ANSWERED):
            return self._fallback(fallback, "not_answered")
        checked = self.checker.check(raw, passages, truncated=truncated)
        text, citations = self._compose(checked)
        if not citations:
            return self._fallback(fallback, "nothing_supported", _removed_text(checked), checked=checked)
        if fallback.answer and not mentions(text, fallback.answer):
            # Supported is not the same as answering: a weak model often copies a true but beside-the-
            # point sentence. The short answer the evidence gives must be in what the model says.
            return self._fallback(fallback, "misses_answer", repr(fallback.answer), checked=checked)
        conflicts = _renumber_conflicts(fallback, citations)
        removed = _removed_text(checked)
        return Answer(
            question=question,
            query=query,
            text=text,
            citations=citations,
            refused=False,
            answerer=self.name,
            conflicts=conflicts,
            score=fallback.score,
            notice=removed.replace(" removed:", " removed from the LLM answer:", 1) if removed else None,
            signals=fallback.signals,
            llm_check=_summary(checked),
            **_answer_phrase(fallback),
        )

    def _call(self, question: str, passages: list[Passage], history: Sequence[Message]) -> tuple[str, bool]:
        """The model's reply, and whether it stopped at its token limit."""
        turns = "".join(f"{m.role}: {m.content}\n" for m in history if m.role in ("user", "assistant"))
        prompt = load_prompt().format(
            passages=format_passages(passages),
            question=question,
            history=f"Conversation so far:\n{turns}\n" if turns else "",
        )
        with ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(self.chat_model.invoke, prompt)
            try:
                result = future.result(timeout=self.timeout)
            except FutureTimeout as exc:
                raise TimeoutError(f"no answer within {self.timeout:g}s") from exc
        content = getattr(result, "content", result)
        metadata = getattr(result, "response_metadata", None) or {}
        truncated = metadata.get("finish_reason") == "length"
        return (content if isinstance(content, str) else str(content)), truncated

    def _compose(self, checked: CheckedReply) -> tuple[str, list[Citation]]:
        """The kept sentences with their markers renumbered to citations of their supporting spans."""
        citations: list[Citation] = []
        by_key: dict[tuple[str, int, int], int] = {}
        kept = []
        for verdict in checked.kept:
            numbers = []
            for support in verdict.supports:
                key = (support.chunk.id, support.start, support.end)
                if key not in by_key:
                    by_key[key] = len(citations) + 1
                    citations.append(cite_span(by_key[key], support.chunk, support.start, support.end))
                if by_key[key] not in numbers:
                    numbers.append(by_key[key])
            kept.append(verdict.claim + " " + "".join(f"[{n}]" for n in numbers))
        return " ".join(kept), citations

    def _fallback(
        self, fallback: Answer, reason: str, detail: str = "", *, checked: CheckedReply | None = None
    ) -> Answer:
        why = FALLBACKS[reason] + (f" ({detail})" if detail else "")
        notice = f"{why}; showing the extractive answer instead"
        if fallback.notice:  # e.g. a named source that is not indexed: still worth saying
            notice = f"{fallback.notice}; {notice}"
        summary = _summary(checked) if checked is not None else LLMCheck()
        return replace(fallback, notice=notice, llm_check=replace(summary, fallback=reason))


def _summary(checked: CheckedReply) -> LLMCheck:
    removed = checked.removed()
    return LLMCheck(
        sentences=len(checked.verdicts),
        kept=len(checked.kept),
        removed={reason: removed[reason] for reason in REASONS if removed[reason]},
    )


def _removed_text(checked: CheckedReply) -> str:
    """E.g. "2 sentence(s) removed: 1 without a citation, 1 not supported by the passage it cites"."""
    removed = checked.removed()
    if not removed:
        return ""
    reasons = ", ".join(f"{removed[r]} {REASONS[r]}" for r in REASONS if removed[r])
    return f"{sum(removed.values())} sentence(s) removed: {reasons}"


def _renumber_conflicts(fallback: Answer, citations: list[Citation]) -> list[ConflictSide]:
    """The fallback's conflict sides, their citations appended to ``citations`` and renumbered
    (the sides' numbers referred to the extractive answer's citation list)."""
    if not fallback.conflicts:
        return []
    old = {c.n: c for c in fallback.citations}
    by_key = {(c.chunk_id, c.start, c.end): c.n for c in citations}
    sides = []
    for side in fallback.conflicts:
        numbers = []
        for n in side.citations:
            cited = old.get(n)
            if cited is None:
                continue
            key = (cited.chunk_id, cited.start, cited.end)
            if key not in by_key:
                by_key[key] = len(citations) + 1
                citations.append(replace(cited, n=by_key[key]))
            numbers.append(by_key[key])
        sides.append(replace(side, citations=tuple(numbers)))
    return sides


def _answer_phrase(fallback: Answer) -> dict[str, Any]:
    """The extractive answer's short answer (a document span), which the LLM's text was checked to state."""
    return {
        "answer": fallback.answer,
        "answer_doc_id": fallback.answer_doc_id,
        "answer_start": fallback.answer_start,
        "answer_end": fallback.answer_end,
    }
