"""The answering entry point the CLI, the API and the eval all call."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from index.errors import InvalidRequest
from index.pipeline import DocumentIndex
from index.settings import Settings
from qa.parts import NamedParts, named_parts
from qa.types import Answer, Filters, Message, PartPassages, Passage

EXTRACTIVE = "extractive"
LLM = "llm"
PART_K = 3  # passages retrieved from each source a question names
PART_K_FUSED = 6  # depth of each ranking fused for a part (clause and whole question)


class QAService:
    """Answers questions from a :class:`DocumentIndex`.

    Args:
        index: the opened document index.
        settings: retrieval depths, weights and the refusal threshold.
        chat_model: optional LangChain chat model (``BaseChatModel``) for the LLM answerer; when
            None and ``settings.llm_base_url`` is set, a ``ChatOpenAI`` client is built from settings.
    """

    def __init__(self, *, index: DocumentIndex, settings: Settings, chat_model: Any | None = None) -> None:
        from qa.answer import ExtractiveAnswerer
        from qa.llm import build_chat_model

        self.index = index
        self.settings = settings
        self.extractive = ExtractiveAnswerer(index=index, threshold=settings.refusal_threshold)
        self.chat_model = chat_model if chat_model is not None else build_chat_model(settings)

    @property
    def answerers(self) -> list[str]:
        """Names of the answerers this service can use (the API lists them as models)."""
        return [EXTRACTIVE] + ([LLM] if self.chat_model is not None else [])

    def search(self, query: str, *, filters: Filters | None = None, k: int | None = None) -> list[Passage]:
        """Ranked passages for a query (hybrid retrieval, no answering)."""
        from qa.retrieve import hybrid_search

        query = _clean_question(query, self.settings.max_question_chars)
        return hybrid_search(self.index, query, settings=self.settings, filters=filters, k=k or self.settings.top_k)

    def check_request(
        self,
        question: str,
        *,
        history: Sequence[Message] = (),
        top_k: int | None = None,
        answerer: str | None = None,
    ) -> tuple[str, str, int]:
        """What :meth:`ask` refuses, checked without retrieving anything (a stream can then start
        before the answer is built, knowing the request is acceptable).

        Returns:
            The cleaned question, the answerer's name and the number of passages.

        Raises:
            InvalidRequest: empty or oversized question, unknown answerer, bad top_k.
        """
        question = _clean_question(question, self.settings.max_question_chars)
        for turn in history:
            _check_text(turn.content, "history")
        name = answerer or self.settings.answerer
        if name not in self.answerers:
            raise InvalidRequest(
                f"unknown or unconfigured answerer {name!r}; available: {', '.join(self.answerers)}",
                param="answerer",
            )
        k = top_k or self.settings.top_k
        if not 1 <= k <= 50:
            raise InvalidRequest(f"top_k must be between 1 and 50, got {k}", param="top_k")
        return question, name, k

    def ask(
        self,
        question: str,
        *,
        history: Sequence[Message] = (),
        filters: Filters | None = None,
        top_k: int | None = None,
        answerer: str | None = None,
    ) -> Answer:
        """Answer ``question`` from the index, resolving follow-ups against ``history``.

        Raises:
            InvalidRequest: empty or oversized question, unknown answerer, bad top_k.
        """
        from qa.followup import retrieval_query
        from qa.retrieve import retrieve

        started = time.perf_counter()
        question, name, k = self.check_request(question, history=history, top_k=top_k, answerer=answerer)
        self.index.sync()
        t0 = time.perf_counter()
        query = retrieval_query(question, history)
        found = retrieve(self.index, query, settings=self.settings, filters=filters, k=k)
        passages = found.passages
        parts, part_passages = self._named_parts(question, query, found.query_vector, filters)
        t1 = time.perf_counter()
        question_vector = None if query == question else self.index.embedder.embed_queries([question])[0]
        answer = self.extractive.answer(
            question=question,
            query=query,
            passages=passages,
            query_vector=found.query_vector,
            question_vector=question_vector,
            parts=parts,
            part_passages=part_passages,
        )
        if name == LLM:
            from qa.llm import LLMAnswerer

            answer = LLMAnswerer(
                chat_model=self.chat_model, index=self.index, timeout=self.settings.llm_timeout
            ).answer(question=question, query=query, passages=passages, history=history, fallback=answer)
        t2 = time.perf_counter()
        answer.timings_ms.update(
            {
                "sync": round((t0 - started) * 1000, 2),
                "retrieve": round((t1 - t0) * 1000, 2),
                "answer": round((t2 - t1) * 1000, 2),
                "total": round((t2 - started) * 1000, 2),
            }
        )
        return answer

    def _named_parts(
        self, question: str, query: str, vector: Any, filters: Filters | None
    ) -> tuple[NamedParts, list[PartPassages]]:
        """The sources the question names and, when it names indexed sources twice or more (two
        outlets, or one outlet's two reports), the best passages from that source for each
        mention's clause, so every part gets evidence and not only the best-ranked one."""
        from qa.phrases import is_factoid

        sources = self.index.sources()
        if not sources:  # documents without sources: a question cannot name one
            return NamedParts(), []
        parts = named_parts(question, sources)
        mentions = [m for m in parts.mentions if not (filters and filters.sources and m.source not in filters.sources)]
        if len(mentions) < 2:
            return parts, []
        whole = (query, vector)
        if is_factoid(question):
            # "Who is the person that X reported and Y described?": every part describes the one
            # answer, so the whole question is asked of each outlet.
            queries = [(m, [whole]) for m in mentions]
        else:
            # "Does X claim A, while Y suggests B?": each part is its own claim, found by its clause
            # (which also tells one outlet's two reports apart), with the whole question's ranking
            # fused in (a clause alone can be too short to find its report). Measured on multihop-rag.
            clause_vectors = self.index.embedder.embed_queries([m.clause for m in mentions])
            queries = [(m, [(m.clause, v), whole]) for m, v in zip(mentions, clause_vectors, strict=True)]
        found = []
        for mention, searches in queries:
            narrowed = replace(filters or Filters(), sources=(mention.source,))
            passages: list[Passage] = []
            if mention.date_from or mention.date_to:
                # The day the clause names, inside any range the caller set; none there: any day.
                dated = _within(narrowed, mention.date_from, mention.date_to)
                if dated is not None:
                    passages = self._part_search(searches, dated)
            if not passages:
                passages = self._part_search(searches, narrowed)
            text, part_vector = searches[0]
            found.append(PartPassages(source=mention.source, clause=text, passages=passages, vector=part_vector))
        return parts, found

    def _part_search(self, searches: Sequence[tuple[str, Any]], filters: Filters) -> list[Passage]:
        """The PART_K best passages for one part: one search's ranking, or the rankings of several
        ``searches`` (text, vector) fused by reciprocal rank, ties going to the first search's order."""
        from qa.retrieve import retrieve

        if len(searches) == 1:
            ((text, vector),) = searches
            found = retrieve(self.index, text, settings=self.settings, filters=filters, k=PART_K, query_vector=vector)
            return found.passages
        fused: dict[str, float] = {}
        first: dict[str, Passage] = {}
        for text, vector in searches:
            ranking = retrieve(
                self.index, text, settings=self.settings, filters=filters, k=PART_K_FUSED, query_vector=vector
            )
            for rank, passage in enumerate(ranking.passages, start=1):
                fused[passage.chunk_id] = fused.get(passage.chunk_id, 0.0) + 1.0 / (self.settings.rrf_k + rank)
                first.setdefault(passage.chunk_id, passage)
        best = sorted(fused, key=lambda cid: -fused[cid])[:PART_K]  # stable: first search's order on ties
        return [replace(first[cid], score=fused[cid]) for cid in best]


def _within(filters: Filters, date_from: date | None, date_to: date | None) -> Filters | None:
    """``filters`` narrowed to [date_from, date_to] (None: open), or None when the two ranges do not meet."""
    lo = max((d for d in (filters.date_from, date_from) if d is not None), default=None)
    hi = min((d for d in (filters.date_to, date_to) if d is not None), default=None)
    if lo is not None and hi is not None and lo > hi:
        return None
    return replace(filters, date_from=None if lo == date.min else lo, date_to=hi)


def _check_text(text: str, param: str) -> None:
    """Lone UTF-16 surrogates (JSON can carry "\\ud800") and NUL cannot be tokenized: a 4xx, not a crash."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"the {param} contains a lone UTF-16 surrogate; send valid Unicode text", param=param
        ) from None
    if "\x00" in text:
        raise InvalidRequest(f"the {param} contains a NUL character", param=param)


def _clean_question(question: str, limit: int) -> str:
    if not isinstance(question, str) or not question.strip():
        raise InvalidRequest("the question is empty", param="question")
    _check_text(question, "question")
    question = question.strip()
    if len(question) > limit:
        raise InvalidRequest(f"the question is {len(question)} characters; the limit is {limit}", param="question")
    return question
