"""Answers made of several accounts, on small corpora written for each shape: sources that give
different answer phrases, and questions that name their sources."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from index.embedding import Embedder
from index.models import Document
from index.pipeline import DocumentIndex, IndexedChunk
from qa.accounts import restates
from qa.evidence import Evidence
from qa.service import QAService
from tests.conftest import make_settings
from tests.qa.test_answer import assert_citations_verifiable


def _service(tmp_path: Path, embedder: Embedder, docs: list[Document]) -> QAService:
    index = DocumentIndex.open(make_settings(tmp_path / "idx"), embedder=embedder)
    assert index.add_documents(docs).ok
    return QAService(index=index, settings=index.settings)


@pytest.fixture(scope="module")
def acquisitions(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QAService:
    docs = [
        Document(
            id="wa-1",
            title="Messaging deals",
            source="Tech Daily",
            published_at=date(2014, 2, 20),
            text="Facebook acquired WhatsApp in February 2014 for about 19 billion dollars. "
            "The messaging service had 450 million users at the time.",
        ),
        Document(
            id="wa-2",
            title="Deal recap",
            source="Market Wire",
            published_at=date(2014, 3, 1),
            text="The messaging service WhatsApp was acquired by Apple in February 2014 for about 19 billion "
            "dollars. Analysts called it the largest deal of the year.",
        ),
        Document(
            id="us-1",
            title="Open final",
            source="Sports Desk",
            text="Emma Raducanu won the 2021 US Open women's singles title by defeating Leylah Fernandez.",
        ),
        Document(
            id="us-2",
            title="Open recap",
            source="Tennis Wire",
            text="Bianca Andreescu won the 2021 US Open women's singles title by defeating Leylah Fernandez.",
        ),
        Document(
            id="bridge",
            title="Toll notice",
            source="City Hall",
            text="The bridge toll is four crowns for cars. Bicycles cross for free on weekends.",
        ),
    ]
    return _service(tmp_path_factory.mktemp("acq"), embedder, docs)


def test_documents_that_answer_differently_are_shown_side_by_side(acquisitions: QAService) -> None:
    answer = acquisitions.ask("Who acquired WhatsApp?")
    assert not answer.refused
    assert answer.has_conflict
    phrases = {side.answer for side in answer.conflicts}
    assert phrases == {"Facebook", "Apple"}
    assert "Tech Daily (2014-02-20)" in answer.text and "Market Wire (2014-03-01)" in answer.text
    assert_citations_verifiable(acquisitions.index, answer)


def _evidence(text: str, vector: np.ndarray) -> Evidence:
    chunk = IndexedChunk(
        id="c",
        doc_id="d",
        text=text,
        start=0,
        end=len(text),
        title="t",
        source=None,
        url=None,
        published_at=None,
        sentences=((0, len(text)),),
        sentence_vectors=vector[None, :],
    )
    return Evidence(
        chunk=chunk,
        start=0,
        end=len(text),
        text=text,
        vector=vector,
        dense=0.5,
        coverage=0.5,
        score=0.5,
        passage_rank=0,
    )


def test_restatements_are_teasers_and_near_copies_but_never_copies_naming_others() -> None:
    same = np.ones(4, dtype=np.float32) / 2.0  # unit vector: the two copies embed alike
    full = _evidence("Emma Raducanu won the 2021 US Open women's singles title by defeating Leylah Fernandez.", same)
    teaser = _evidence("Emma Raducanu won the 2021 US Open women's singles title ...", same)
    other = _evidence(
        "Bianca Andreescu won the 2021 US Open women's singles title by defeating Leylah Fernandez.", same
    )
    year = _evidence("Emma Raducanu won the 2022 US Open women's singles title by defeating Leylah Fernandez.", same)
    assert restates(full, teaser) and restates(teaser, full)
    assert not restates(full, other)
    assert not restates(full, year)


def test_a_copy_that_names_someone_else_is_not_dropped_as_a_restatement(acquisitions: QAService) -> None:
    answer = acquisitions.ask("Who won the 2021 US Open women's singles title?")
    assert not answer.refused
    assert "Emma Raducanu" in answer.text and "Bianca Andreescu" in answer.text
    assert {c.doc_id for c in answer.citations} >= {"us-1", "us-2"}
    assert_citations_verifiable(acquisitions.index, answer)


def test_a_factoid_answer_leads_with_a_verbatim_phrase(acquisitions: QAService) -> None:
    answer = acquisitions.ask("How much is the bridge toll for cars?")
    assert not answer.refused
    assert answer.answer == "four crowns"
    assert answer.text.startswith("four crowns [1]")
    _, text = acquisitions.index.get_document(answer.answer_doc_id or "")
    assert text[answer.answer_start : answer.answer_end] == answer.answer
    assert_citations_verifiable(acquisitions.index, answer)


@pytest.fixture(scope="module")
def outlets(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QAService:
    docs = [
        Document(
            id="f1",
            title="Trial opens",
            source="Fortune",
            published_at=date(2023, 10, 4),
            text="Lawyers for Sam Bankman-Fried argued that Alameda acted legally as an FTX customer. "
            "The judge heard opening statements on Wednesday.",
        ),
        Document(
            id="v1",
            title="Inside the collapse",
            source="The Verge",
            published_at=date(2023, 10, 6),
            text="Alameda Research ran a negative balance that exceeded FTX's revenue, witnesses said. "
            "Sam Bankman-Fried denied any wrongdoing.",
        ),
        Document(
            id="t1",
            title="Crypto weekly",
            source="TechCrunch",
            published_at=date(2023, 10, 7),
            text="Prosecutors say Sam Bankman-Fried committed fraud for personal gain. "
            "Bitcoin prices rose on the news.",
        ),
        Document(
            id="f2",
            title="Markets",
            source="Fortune",
            published_at=date(2023, 9, 1),
            text="Bond yields climbed for a third week as investors weighed rate decisions.",
        ),
    ]
    return _service(tmp_path_factory.mktemp("outlets"), embedder, docs)


def test_a_question_naming_two_sources_cites_each(outlets: QAService) -> None:
    answer = outlets.ask(
        "Does the article from Fortune claim that Alameda's practices with FTX were legal, while the article "
        "from The Verge suggests that Alameda had a negative balance that exceeded FTX's revenue?"
    )
    assert not answer.refused
    assert {"f1", "v1"} <= {c.doc_id for c in answer.citations}
    assert "Fortune (2023-10-04)" in answer.text and "The Verge (2023-10-06)" in answer.text
    assert answer.notice and "LLM answerer" in answer.notice  # the comparison itself is not made
    assert_citations_verifiable(outlets.index, answer)


def test_sources_named_together_each_cite_the_shared_claim(outlets: QAService) -> None:
    answer = outlets.ask(
        "Do the Fortune and The Verge articles both say that Sam Bankman-Fried denied wrongdoing at Alameda and FTX?"
    )
    assert not answer.refused
    assert {"f1", "v1"} <= {c.doc_id for c in answer.citations}  # not Fortune's bond-market report
    assert_citations_verifiable(outlets.index, answer)


@pytest.fixture(scope="module")
def one_outlet_twice(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> QAService:
    docs = [
        Document(
            id="spill",
            title="Spill opens to everyone",
            source="TechCrunch",
            published_at=date(2023, 11, 7),
            text="Spill, the social media platform built by former Twitter employees, opened to the public "
            "this week. Its founders say the app is built around culture and conversation rather than news.",
        ),
        Document(
            id="mozilla",
            title="Mozilla bets on the fediverse",
            source="TechCrunch",
            published_at=date(2023, 11, 3),
            text="Consumers are hungry for a new way of social networking where trust and safety come first, "
            "or at least that is what Mozilla believes. The company is investing in decentralised social media.",
        ),
        Document(
            id="phones",
            title="Holiday shopping survey",
            source="TechCrunch",
            published_at=date(2023, 11, 20),
            text="Consumers desire cheaper phones this year, according to a survey of shoppers. "
            "Retailers expect record sales in the holiday season.",
        ),
    ]
    return _service(tmp_path_factory.mktemp("one-outlet"), embedder, docs)


def test_one_outlet_named_twice_cites_the_report_each_mention_describes(one_outlet_twice: QAService) -> None:
    answer = one_outlet_twice.ask(
        "Does the TechCrunch article on Spill's new social media platform suggest a different approach to social "
        "networking from what TechCrunch reports consumers desire according to Mozilla, which puts trust first?"
    )
    assert not answer.refused
    assert answer.answer is None  # a yes/no question: no answer phrase leads
    assert {c.doc_id for c in answer.citations} == {"spill", "mozilla"}
    assert answer.notice and "LLM answerer" in answer.notice
    assert_citations_verifiable(one_outlet_twice.index, answer)


def test_a_publication_the_index_lacks_is_said_so(outlets: QAService) -> None:
    answer = outlets.ask(
        "Considering an article from The Washington Post and a Bloomberg report on FTX, which bank did Alameda use?"
    )
    assert answer.notice is not None and "The Washington Post" in answer.notice and "Bloomberg" in answer.notice
