"""Eval datasets: the hand-written sample-news set, generic QA JSONL, and BEIR retrieval sets.

Every loader returns an :class:`EvalDataset`: the cases to ask and the documents to index. Nothing
here touches the index or the answerer; :mod:`eval.runner` does.

Formats:

* Generic QA JSONL: one JSON object per line, ``{"question": str, "answers": [str, ...]}`` plus
  optional ``id``, ``kind``, ``history`` (OpenAI-style ``[{role, content}]``) and ``evidence``
  (``[{"doc_id": str, "quote": str}]``, the quote a verbatim substring of that document's text; a
  missing quote means the whole document). Empty ``answers`` marks a question the corpus does not
  answer. The corpus is a directory of files citeqa can index.
* BEIR: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``, ``text``) and
  ``qrels/<split>.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header line).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.errors import DatasetError
from index.errors import DocumentError
from index.loaders import document_from_record, load_paths
from index.models import Document
from qa.types import Message

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_NEWS_QUESTIONS = ROOT / "eval" / "sample-news" / "questions.jsonl"
SAMPLE_NEWS_CORPUS = ROOT / "data" / "sample-news"
KINDS = (
    "factual",
    "number",
    "date/timeline",
    "name-variant",
    "cross-source",
    "conflict",
    "follow-up",
    "unanswerable",
)
RETRIEVAL_KIND = "retrieval"
QA_DEV_SETS = ("squad2", "multihop-rag", "rgb-counterfactual")
QA_DEV_ENV = "CITEQA_QA_DEV"
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Evidence:
    """Gold support for a case: a document, and optionally the exact text in it that answers."""

    doc_id: str
    quote: str | None = None


@dataclass(frozen=True)
class EvalCase:
    """One question to ask, with what a correct response looks like.

    ``answerable`` is None for retrieval-only sets (BEIR), which say which documents are relevant
    but not what the answer is; answer and refusal metrics skip those cases.
    """

    id: str
    question: str
    kind: str
    answers: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    history: tuple[Message, ...] = ()
    conflicting: tuple[str, ...] = ()  # false answers some passages state (RGB counterfactual)
    relevance: Mapping[str, int] = field(default_factory=dict)  # graded qrels: doc id -> grade
    answerable: bool | None = None

    @property
    def gold_docs(self) -> set[str]:
        return {e.doc_id for e in self.evidence} | {d for d, grade in self.relevance.items() if grade > 0}


@dataclass
class EvalDataset:
    """Cases plus the corpus they are asked against."""

    name: str
    cases: list[EvalCase]
    documents: list[Document]

    @property
    def slug(self) -> str:
        """A name usable in a Chroma collection name."""
        cleaned = "".join(ch if ch.isalnum() else "-" for ch in self.name.lower()).strip("-")
        return "-".join(part for part in cleaned.split("-") if part)[:40] or "dataset"


# generic QA JSONL ---------------------------------------------------------------------------------
def load_qa_jsonl(path: str | Path, *, corpus: str | Path, name: str | None = None) -> EvalDataset:
    """Load a QA JSONL file and the corpus directory (or file) it is asked against.

    Raises:
        DatasetError: a file is missing, a line is malformed (the message names file, line and
            field), two cases share an id, or a document in the corpus cannot be loaded.
    """
    path = Path(path)
    cases = list(_read_qa_cases(path))
    if not cases:
        raise DatasetError(f"{path}: no cases")
    return EvalDataset(name=name or path.stem, cases=cases, documents=load_corpus(corpus))


def load_sample_news() -> EvalDataset:
    """The hand-written cases over the two bundled news reports."""
    return load_qa_jsonl(SAMPLE_NEWS_QUESTIONS, corpus=SAMPLE_NEWS_CORPUS, name="sample-news")


def load_corpus(corpus: str | Path) -> list[Document]:
    """Every document under a directory (or in one file), as citeqa's loaders read them."""
    corpus = Path(corpus)
    if not corpus.exists():
        raise DatasetError(f"{corpus}: corpus not found")
    loaded = load_paths([corpus])
    if loaded.failures:
        first = loaded.failures[0]
        raise DatasetError(f"{first.source}: {first.reason} ({len(loaded.failures)} corpus file(s) failed)")
    if not loaded.documents:
        raise DatasetError(f"{corpus}: no documents citeqa can index")
    return loaded.documents


def _read_qa_cases(path: Path) -> Iterator[EvalCase]:
    seen: set[str] = set()
    for lineno, record in _jsonl(path):
        where = f"{path}:{lineno}"
        case = _qa_case(record, where=where, default_id=f"q{lineno}")
        if case.id in seen:
            raise DatasetError(f"{where}: duplicate id {case.id!r}")
        seen.add(case.id)
        yield case


def _qa_case(record: Any, *, where: str, default_id: str) -> EvalCase:
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: a case must be a JSON object")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DatasetError(f"{where}: 'question' must be a non-empty string")
    answers = record.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
        raise DatasetError(f"{where}: 'answers' must be a list of non-empty strings")
    conflicting = record.get("conflicting_answers", [])
    if not isinstance(conflicting, list) or not all(isinstance(a, str) and a.strip() for a in conflicting):
        raise DatasetError(f"{where}: 'conflicting_answers' must be a list of non-empty strings")
    raw_evidence, raw_history = record.get("evidence") or [], record.get("history") or []
    if not isinstance(raw_evidence, list) or not isinstance(raw_history, list):
        raise DatasetError(f"{where}: 'evidence' and 'history' must be lists")
    evidence = tuple(_evidence(item, where=f"{where}: evidence[{i}]") for i, item in enumerate(raw_evidence))
    history = tuple(_message(item, where=f"{where}: history[{i}]") for i, item in enumerate(raw_history))
    kind = record.get("kind") or ("unanswerable" if not answers else "factual")
    if not isinstance(kind, str):
        raise DatasetError(f"{where}: 'kind' must be a string")
    if not answers and evidence:
        raise DatasetError(f"{where}: a case without answers is unanswerable and cannot have evidence")
    return EvalCase(
        id=str(record.get("id") or default_id),
        question=question.strip(),
        kind=kind,
        answers=tuple(a.strip() for a in answers),
        evidence=evidence,
        history=history,
        conflicting=tuple(a.strip() for a in conflicting),
        answerable=bool(answers),
    )


def _evidence(item: Any, *, where: str) -> Evidence:
    if not isinstance(item, dict) or not isinstance(item.get("doc_id"), str) or not item["doc_id"]:
        raise DatasetError(f"{where}: must be an object with a string 'doc_id'")
    quote = item.get("quote")
    if quote is not None and (not isinstance(quote, str) or not quote.strip()):
        raise DatasetError(f"{where}: 'quote' must be a non-empty string when given")
    return Evidence(doc_id=item["doc_id"], quote=quote)


def _message(item: Any, *, where: str) -> Message:
    if not isinstance(item, dict) or item.get("role") not in _ROLES or not isinstance(item.get("content"), str):
        raise DatasetError(f"{where}: must be {{role: user|assistant|system, content: str}}")
    return Message(role=item["role"], content=item["content"])


def verify_evidence(cases: Sequence[EvalCase], texts: Mapping[str, str]) -> list[str]:
    """Problems with the gold evidence: unknown documents and quotes that are not verbatim.

    Args:
        cases: the dataset's cases.
        texts: document id -> full document text, as indexed.

    Returns:
        One message per problem (empty when every quote is a substring of its document).
    """
    problems = []
    for case in cases:
        for ev in case.evidence:
            if ev.doc_id not in texts:
                problems.append(f"{case.id}: evidence names unknown document {ev.doc_id!r}")
            elif ev.quote is not None and ev.quote not in texts[ev.doc_id]:
                problems.append(f"{case.id}: quote not found verbatim in {ev.doc_id}: {ev.quote[:80]!r}")
        for doc_id in case.relevance:
            if doc_id not in texts:
                problems.append(f"{case.id}: qrels name unknown document {doc_id!r}")
    return problems


# BEIR ---------------------------------------------------------------------------------------------
def load_beir(
    directory: str | Path, *, split: str = "test", include_title: bool = True, limit: int | None = None
) -> EvalDataset:
    """Load a BEIR-format retrieval set; only queries that have judgements in ``split`` become cases.

    Args:
        directory: holds ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.
        split: which qrels file to read.
        include_title: index ``title`` + blank line + ``text`` (the usual BEIR practice) rather
            than the text alone; the title is kept as the document title either way.
        limit: keep only the first ``limit`` queries (quick runs).

    Raises:
        DatasetError: a file is missing or malformed.
    """
    directory = Path(directory)
    qrels = read_qrels(directory / "qrels" / f"{split}.tsv")
    queries = {str(r.get("_id")): r for _, r in _jsonl(directory / "queries.jsonl")}
    cases = []
    for qid, judged in qrels.items():
        query = queries.get(qid)
        if query is None or not isinstance(query.get("text"), str):
            raise DatasetError(f"{directory / 'queries.jsonl'}: no query text for qrels query {qid!r}")
        cases.append(EvalCase(id=qid, question=query["text"], kind=RETRIEVAL_KIND, relevance=judged))
    if limit is not None:
        cases = cases[:limit]
    documents = [_beir_document(record, where, include_title) for where, record in _beir_corpus(directory)]
    return EvalDataset(name=directory.name, cases=cases, documents=documents)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id -> {document id: grade} from a BEIR qrels TSV (header line optional)."""
    if not path.is_file():
        raise DatasetError(f"{path}: qrels file not found")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for lineno, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (lineno == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise DatasetError(f"{path}:{lineno}: expected query-id, corpus-id, score")
            try:
                grade = int(row[2])
            except ValueError:
                raise DatasetError(f"{path}:{lineno}: score {row[2]!r} is not an integer") from None
            qrels.setdefault(row[0], {})[row[1]] = grade
    if not qrels:
        raise DatasetError(f"{path}: no judgements")
    return qrels


def _beir_corpus(directory: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    path = directory / "corpus.jsonl"
    for lineno, record in _jsonl(path):
        yield f"{path}:{lineno}", record


def _beir_document(record: Any, where: str, include_title: bool) -> Document:
    if not isinstance(record, dict):
        raise DatasetError(f"{where}: a corpus record must be a JSON object")
    title = str(record.get("title") or "").strip()
    text = str(record.get("text") or "")
    body = f"{title}\n\n{text}" if include_title and title else text
    try:
        return document_from_record({**record, "text": body, "title": title or None}, source=where)
    except DocumentError as exc:
        raise DatasetError(str(exc)) from None


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{path}:{lineno}: malformed JSON: {exc}") from None


# DATASET argument -------------------------------------------------------------------------------
def qa_dev_dir() -> Path:
    """Where the public qa-dev sets live: ``$CITEQA_QA_DEV``, else ``<repo>/../shared/data/qa-dev``."""
    return Path(os.environ.get(QA_DEV_ENV) or ROOT.parent / "shared" / "data" / "qa-dev")


def load_qa_dev(name: str) -> EvalDataset:
    """One of the public qa-dev sets (:data:`QA_DEV_SETS`) by its short name.

    Raises:
        DatasetError: the set is not there (the message names the path looked at).
    """
    folder = qa_dev_dir() / name
    questions = folder / "questions.jsonl"
    if not questions.is_file():
        raise DatasetError(f"{questions}: qa-dev set {name!r} not found (set {QA_DEV_ENV} to the qa-dev directory)")
    return load_qa_jsonl(questions, corpus=folder / "corpus", name=name)


def resolve_dataset(spec: str, *, corpus: str | Path | None = None, split: str = "test") -> EvalDataset:
    """Load what ``citeqa eval DATASET`` names: ``sample-news``, a qa-dev set (``squad2``,
    ``multihop-rag``, ``rgb-counterfactual``), a BEIR directory or a QA JSONL file.

    A QA JSONL file needs ``corpus``, or a ``corpus/`` directory next to it.
    """
    if spec == "sample-news":
        return load_sample_news()
    if spec in QA_DEV_SETS and not Path(spec).exists():
        return load_qa_dev(spec)
    path = Path(spec)
    if path.is_dir():
        if not (path / "corpus.jsonl").is_file():
            raise DatasetError(f"{path}: not a BEIR directory (no corpus.jsonl)")
        return load_beir(path, split=split)
    if path.is_file():
        if corpus is None:
            corpus = path.parent / "corpus"
            if not corpus.is_dir():
                raise DatasetError(f"{path}: give the documents it is asked against with --corpus DIR")
        return load_qa_jsonl(path, corpus=corpus)
    raise DatasetError(
        f"{spec}: not 'sample-news', a qa-dev set ({', '.join(QA_DEV_SETS)}), a BEIR directory or a QA JSONL file"
    )
