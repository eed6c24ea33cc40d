"""Sentence-aware chunking that keeps character offsets into the document text.

Sentences are found with a rule-based splitter (abbreviation-aware, paragraph breaks always end a
sentence). Chunks are runs of whole sentences up to ``chunk_size`` characters that overlap by up to
``overlap`` characters of whole sentences. A sentence longer than a chunk is cut with LangChain's
``RecursiveCharacterTextSplitter`` (which keeps start indexes), so every chunk and every sentence
span satisfies ``text[start:end] == chunk``.
"""

from __future__ import annotations

import hashlib
import re

from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.models import Chunk, Document

# Tokens that end with a period but do not end a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st gen brig col lt maj capt sgt adm gov sen rep rev hon pres
    no vs etc inc ltd co corp dept univ fig figs eq al approx est jan feb mar apr jun jul aug sep
    sept oct nov dec e.g i.e u.s u.k u.n a.m p.m ph.d""".split()
)
# Candidate boundary: terminal punctuation, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s)|\n\s*\n|\n(?=\s*(?:[#*\-•]|\d+[.)]\s))")
_BOUNDARY_LINES = re.compile(_BOUNDARY.pattern + r"|\n")
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)\.$")


def _looks_hard_wrapped(text: str) -> bool:
    """True when single newlines mostly continue a sentence (text wrapped at a fixed width)."""
    breaks = re.findall(r"[^\n]\n(?=[^\n])(.)", text)
    return len(breaks) >= 3 and sum(ch.islower() for ch in breaks) / len(breaks) > 0.3


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) spans of the sentences in ``text``, whitespace trimmed, in order.

    A blank line always ends a sentence; a single newline does too unless the text is hard-wrapped
    (then only punctuation does), so headings and title lines stand alone.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    boundary = _BOUNDARY if _looks_hard_wrapped(text) else _BOUNDARY_LINES
    for match in boundary.finditer(text):
        end = match.end()
        token = match.group(0)
        if token.startswith(".") and token.strip(".") == "" and _is_abbreviation(text, match.start()):
            continue
        if "\n" not in token and not _next_starts_sentence(text, end):
            continue
        _append_trimmed(spans, text, start, end)
        start = end
    _append_trimmed(spans, text, start, len(text))
    return spans


def _is_abbreviation(text: str, dot: int) -> bool:
    match = _WORD_BEFORE.search(text[max(0, dot - 12) : dot + 1])
    if not match:
        return False
    word = match.group(1).lower().rstrip(".")
    # Single capital letters are initials ("J. Smith"), dotted acronyms ("U.S.") too.
    return word in _ABBREVIATIONS or len(word) == 1 or "." in word


def _next_starts_sentence(text: str, pos: int) -> bool:
    rest = text[pos : pos + 4].lstrip()
    return not rest or not rest[0].islower()


def _append_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _cut_long(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence into pieces of at most ``size`` characters, offsets kept."""
    start, end = span
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size, chunk_overlap=0, add_start_index=True, separators=["; ", ", ", " ", ""]
    )
    pieces: list[tuple[int, int]] = []
    for doc in splitter.create_documents([text[start:end]]):
        offset = start + int(doc.metadata["start_index"])
        pieces.append((offset, offset + len(doc.page_content)))
    return pieces


def chunk_document(doc: Document, *, chunk_size: int = 800, overlap: int = 150) -> list[Chunk]:
    """Split a document into overlapping runs of whole sentences.

    Args:
        doc: the document; chunk offsets index into ``doc.text``.
        chunk_size: maximum chunk length in characters (a chunk may be shorter).
        overlap: up to this many characters of whole trailing sentences repeat in the next chunk.

    Returns:
        Chunks in document order; ids derive from the document id and the chunk text, so the
        same text in the same document keeps its id when other parts change.
    """
    text = doc.text
    sentences: list[tuple[int, int]] = []
    for span in split_sentences(text):
        sentences.extend(_cut_long(text, span, chunk_size) if span[1] - span[0] > chunk_size else [span])
    chunks: list[Chunk] = []
    seen_ids: dict[str, int] = {}
    i = 0
    while i < len(sentences):
        j = i
        while j + 1 < len(sentences) and sentences[j + 1][1] - sentences[i][0] <= chunk_size:
            j += 1
        start, end = sentences[i][0], sentences[j][1]
        chunk_text = text[start:end]
        digest = hashlib.sha256(f"{doc.id}\x00{chunk_text}".encode()).hexdigest()[:16]
        seen_ids[digest] = seen_ids.get(digest, 0) + 1
        suffix = f"-{seen_ids[digest]}" if seen_ids[digest] > 1 else ""
        chunks.append(
            Chunk(
                id=f"{doc.id}#{digest}{suffix}",
                doc_id=doc.id,
                index=len(chunks),
                start=start,
                end=end,
                text=chunk_text,
                sentences=tuple(sentences[i : j + 1]),
            )
        )
        if j + 1 >= len(sentences):
            break
        # Step back over whole sentences that fit in the overlap, but always move forward.
        nxt = j + 1
        while nxt - 1 > i and sentences[j][1] - sentences[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt
    return chunks
