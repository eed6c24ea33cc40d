"""Chunking: offsets a citation can be checked against, sentence spans, sizes, stable ids."""

from __future__ import annotations

import pytest
from conftest import DOC_DEFEAT, SAMPLE_DIR

from index.chunking import chunk_document, split_sentences
from index.loaders import load_paths
from index.models import Chunk, Document
from index.pipeline import DocumentIndex

SETTINGS = [(800, 150), (400, 100), (200, 50), (1200, 0), (100, 99)]


@pytest.fixture(scope="module")
def sample_docs() -> list[Document]:
    result = load_paths([SAMPLE_DIR])
    assert result.failures == []
    return result.documents


def sentences_of(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def assert_well_formed(doc: Document, chunks: list[Chunk], *, size: int, overlap: int) -> None:
    assert chunks, "a non-empty document gives at least one chunk"
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.doc_id == doc.id and chunk.id.startswith(f"{doc.id}#")
        assert len(chunk.text) <= size
        assert chunk.text == chunk.text.strip()
        assert chunk.sentences, "every chunk is made of sentences"
        assert chunk.sentences[0][0] == chunk.start and chunk.sentences[-1][1] == chunk.end
        for (s, e), (s2, _) in zip(chunk.sentences, chunk.sentences[1:], strict=False):
            assert s < e <= s2
        for s, e in chunk.sentences:
            assert chunk.start <= s < e <= chunk.end
            assert doc.text[s:e].strip() == doc.text[s:e]
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.start < nxt.start, "chunks always move forward"
        shared = max(0, prev.end - nxt.start)
        assert shared <= overlap
        if shared:
            # the overlap is whole sentences, repeated verbatim
            assert set(nxt.sentences) & set(prev.sentences)
    # nothing is lost: every non-space character of the document is in some chunk
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


@pytest.mark.parametrize(("size", "overlap"), SETTINGS)
def test_every_sample_chunk_is_an_exact_span_of_its_document(
    sample_docs: list[Document], size: int, overlap: int
) -> None:
    for doc in sample_docs:
        assert_well_formed(doc, chunk_document(doc, chunk_size=size, overlap=overlap), size=size, overlap=overlap)


def test_stored_chunks_of_the_sample_index_point_into_the_stored_text(sample_index: DocumentIndex) -> None:
    """What a citation relies on: stored offsets index the stored document text."""
    texts = {d.id: sample_index.get_document(d.id)[1] for d in sample_index.list_documents()}
    stored = list(sample_index.store.get_chunks())
    assert len(stored) == sum(d.chunk_count for d in sample_index.list_documents())
    for item in stored:
        chunk = sample_index.chunk(item.id)
        assert chunk is not None
        text = texts[chunk.doc_id]
        assert text[chunk.start : chunk.end] == chunk.text == item.text
        assert all(chunk.start <= s < e <= chunk.end for s, e in chunk.sentences)
        assert chunk.sentence_vectors.shape == (len(chunk.sentences), sample_index.embedder.dim)


def test_default_chunks_overlap_when_sentences_fit(sample_docs: list[Document]) -> None:
    chunks = [c for doc in sample_docs for c in chunk_document(doc, chunk_size=400, overlap=150)]
    by_doc: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_doc.setdefault(chunk.doc_id, []).append(chunk)
    overlaps = [a.end - b.start for cs in by_doc.values() for a, b in zip(cs, cs[1:], strict=False)]
    assert any(o > 0 for o in overlaps)
    assert all(o <= 150 for o in overlaps)


def test_no_overlap_means_adjacent_chunks_share_nothing(sample_docs: list[Document]) -> None:
    for doc in sample_docs:
        chunks = chunk_document(doc, chunk_size=300, overlap=0)
        assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))


def test_a_sentence_longer_than_a_chunk_is_cut_with_offsets_kept() -> None:
    clauses = ", ".join(f"after hearing witness number {i}" for i in range(40))
    long_sentence = f"The committee, {clauses}, adjourned."
    doc = Document(id="long", title="t", text="Short opening line.\n\n" + long_sentence + " A short ending.")
    chunks = chunk_document(doc, chunk_size=200, overlap=50)
    assert_well_formed(doc, chunks, size=200, overlap=50)
    assert len(chunks) >= len(long_sentence) // 200


def test_ids_survive_an_edit_elsewhere_in_the_document(sample_docs: list[Document]) -> None:
    doc = next(d for d in sample_docs if d.id == DOC_DEFEAT)
    edit_at = doc.text.index("[Disclaimer]")
    edited = Document(**{**doc.__dict__, "text": doc.text.replace("[Disclaimer]", "Reporting by the wire services.")})
    before = chunk_document(doc, chunk_size=400, overlap=100)
    after = chunk_document(edited, chunk_size=400, overlap=100)
    untouched = [c for c in before if c.end <= edit_at]
    assert len(untouched) >= 3
    assert after[: len(untouched)] == untouched  # same ids, same offsets, same sentences
    assert after[-1].id != before[-1].id and "wire services" in after[-1].text


def test_ids_depend_on_the_document_and_repeated_text_gets_distinct_ids() -> None:
    filler = "Filler words go on and on for quite a while, long enough to fill a whole chunk of their own."
    text = f"Same sentence here.\n\n{filler}\n\nSame sentence here."
    a = chunk_document(Document(id="a", title="t", text=text), chunk_size=100, overlap=0)
    b = chunk_document(Document(id="b", title="t", text=text), chunk_size=100, overlap=0)
    assert {c.id for c in a}.isdisjoint(c.id for c in b)
    assert a[0].text == a[-1].text == "Same sentence here."
    assert a[0].id != a[-1].id
    assert chunk_document(Document(id="a", title="t", text=text), chunk_size=100, overlap=0) == a


def test_abbreviations_do_not_end_sentences(sample_docs: list[Document]) -> None:
    doc = next(d for d in sample_docs if d.id == DOC_DEFEAT)
    sentences = sentences_of(doc.text)
    assert (
        "Iranian Brig. Gen. Khayrallah Samadi was killed by a mortar shell, "
        "Iran's semiofficial Fars News Agency reported Saturday." in sentences
    )
    assert any(s.startswith("IS has suffered") and "U.S.-backed Iraqi and Syrian fighters." in s for s in sentences)
    assert any(s.startswith("The Revolutionary Guards' Gen. Qasem Soleimani was also present") for s in sentences)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Officials in the U.S. State Department said so. Dr. Smith disagreed.",
            ["Officials in the U.S. State Department said so.", "Dr. Smith disagreed."],
        ),
        (
            "Brig. Gen. J. Smith arrived at 9 a.m. on Monday. The talks began, e.g. on trade.",
            ["Brig. Gen. J. Smith arrived at 9 a.m. on Monday.", "The talks began, e.g. on trade."],
        ),
        ("It rained! Did it stop? Yes. \u201cIt did.\u201d Then sun.", ["It rained!", "Did it stop?", "Yes.",
                                                                        "\u201cIt did.\u201d", "Then sun."]),
        ("Heading\n\nFirst para ends here. Second starts.", ["Heading", "First para ends here.", "Second starts."]),
        ("The value is 3.5 percent. Next.", ["The value is 3.5 percent.", "Next."]),
    ],
)
def test_sentence_splitting(text: str, expected: list[str]) -> None:
    assert sentences_of(text) == expected


def test_hard_wrapped_lines_join_into_sentences() -> None:
    text = (
        "The panel met in the morning and\nthen adjourned for lunch before it\nresumed in the afternoon.\n"
        "It voted in the\nevening and\nwent home."
    )
    assert sentences_of(text) == [
        "The panel met in the morning and\nthen adjourned for lunch before it\nresumed in the afternoon.",
        "It voted in the\nevening and\nwent home.",
    ]
