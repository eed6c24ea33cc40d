"""Optional LLM answerer through any OpenAI-compatible endpoint, with its output checked.

The model sees numbered passages (the prompt lives in ``qa/prompts/answer_v<N>.txt``). Its answer is
not trusted: every sentence must carry markers that point at passages it was given, and each cited
passage must support the sentence (word overlap or embedding similarity). Unsupported sentences are
dropped; each kept marker becomes a citation to the exact best-matching sentence span of its passage.
On an error, a timeout or no valid citation, the extractive answer is returned with a notice.
Refusal is decided on evidence before the model is called, never left to the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from importlib import resources
from typing import Any

import numpy as np

from index.chunking import split_sentences
from index.lexical import STOPWORDS
from index.pipeline import DocumentIndex
from index.settings import Settings
from qa.citations import Citation, cite_span
from qa.types import Answer, Message, Passage

PROMPT_VERSION = "v1"
NOT_ANSWERED = "NOT ANSWERED"
SUPPORT_OVERLAP = 0.5  # share of a sentence's content words found in the cited passage
SUPPORT_SIMILARITY = 0.6  # or cosine similarity to one of the passage's sentences
_MARKER = re.compile(r"\[(\d+)\]")
_LEADING_MARKERS = re.compile(r"^(?:\s*\[\d+\])+")
_CONTENT = re.compile(r"[a-z0-9]{3,}")


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
    )


def format_passages(passages: Sequence[Passage]) -> str:
    blocks = []
    for i, p in enumerate(passages, start=1):
        origin = ", ".join(x for x in (p.title, p.source, p.published_at or "undated") if x)
        blocks.append(f"[{i}] ({origin})\n<<<\n{p.text}\n>>>")
    return "\n\n".join(blocks)


def _sentences(raw: str) -> list[str]:
    """Sentences of the model's answer; markers written after the full stop stay with their sentence."""
    sentences: list[str] = []
    for start, end in split_sentences(raw):
        sentence = raw[start:end]
        lead = _LEADING_MARKERS.match(sentence)
        if lead and sentences:
            sentences[-1] += lead.group(0)
            sentence = sentence[lead.end() :].strip()
        if sentence:
            sentences.append(sentence)
    return sentences


def _content_words(text: str) -> set[str]:
    return {w for w in _CONTENT.findall(text.lower()) if w not in STOPWORDS}


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
            raw = self._call(question, passages, history)
        except Exception as exc:  # any client, network or timeout error falls back
            return self._fallback(fallback, f"the LLM failed ({type(exc).__name__}: {exc})")
        if raw.strip().upper().startswith(NOT_ANSWERED):
            return self._fallback(fallback, "the LLM found no answer in the passages")
        text, citations, dropped = self._check(raw, passages)
        if not citations:
            return self._fallback(fallback, "the LLM answer had no sentence supported by a valid citation")
        notice = f"{dropped} unsupported sentence(s) removed from the LLM answer" if dropped else None
        return Answer(
            question=question,
            query=query,
            text=text,
            citations=citations,
            refused=False,
            answerer=self.name,
            conflicts=fallback.conflicts,
            score=fallback.score,
            notice=notice,
        )

    def _call(self, question: str, passages: list[Passage], history: Sequence[Message]) -> str:
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
        return content if isinstance(content, str) else str(content)

    def _fallback(self, fallback: Answer, reason: str) -> Answer:
        return replace(fallback, notice=f"{reason}; showing the extractive answer instead")

    def _check(self, raw: str, passages: list[Passage]) -> tuple[str, list[Citation], int]:
        """Keep supported sentences; turn their markers into exact-span citations."""
        citations: list[Citation] = []
        by_key: dict[tuple[str, int, int], int] = {}
        kept: list[str] = []
        dropped = 0
        sentences = _sentences(raw)
        if not sentences:
            return "", citations, dropped
        claims = [_MARKER.sub("", sentence).strip() for sentence in sentences]
        vectors = self.index.embedder.embed_queries(claims)  # one batch, not one call per cited passage
        for sentence, claim, vector in zip(sentences, claims, vectors, strict=True):
            markers = [int(n) for n in _MARKER.findall(sentence)]
            valid = [n for n in dict.fromkeys(markers) if 1 <= n <= len(passages)]
            spans = [span for n in valid if (span := self._support(claim, vector, passages[n - 1])) is not None]
            if not spans:
                dropped += 1
                continue
            numbers = []
            for chunk_id, start, end in spans:
                key = (chunk_id, start, end)
                if key not in by_key:
                    chunk = self.index.chunk(chunk_id)
                    assert chunk is not None
                    by_key[key] = len(citations) + 1
                    citations.append(cite_span(by_key[key], chunk, start, end))
                numbers.append(by_key[key])
            kept.append(claim + " " + "".join(f"[{n}]" for n in numbers))
        return " ".join(kept), citations, dropped

    def _support(self, claim: str, vector: np.ndarray, passage: Passage) -> tuple[str, int, int] | None:
        """The passage sentence that best supports ``claim`` (embedded as ``vector``), if the passage
        supports it at all."""
        chunk = self.index.chunk(passage.chunk_id)
        if chunk is None or not chunk.sentences:
            return None
        words = _content_words(claim)
        overlaps = []
        for start, end in chunk.sentences:
            sentence_words = _content_words(chunk.text[start - chunk.start : end - chunk.start])
            overlaps.append(len(words & sentence_words) / (len(words) or 1))
        sims = chunk.sentence_vectors.astype(np.float32) @ vector
        scores = [o + float(s) for o, s in zip(overlaps, sims, strict=False)]
        best = int(np.argmax(scores))
        passage_overlap = len(words & _content_words(chunk.text)) / (len(words) or 1)
        if passage_overlap < SUPPORT_OVERLAP and float(sims[best]) < SUPPORT_SIMILARITY:
            return None
        start, end = chunk.sentences[best]
        return chunk.id, start, end
