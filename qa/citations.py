"""Citations: a numbered pointer to an exact span of an indexed document.

The invariant every citation keeps: ``document_text[start:end] == quote``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from index.pipeline import IndexedChunk


@dataclass(frozen=True)
class Citation:
    """One cited span. ``start``/``end`` are character offsets into the whole document text."""

    n: int
    doc_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    chunk_id: str
    start: int
    end: int
    quote: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def label(self) -> str:
        """Human-readable origin: title, source and date."""
        parts = [self.title]
        if self.source:
            parts.append(self.source)
        parts.append(self.published_at or "undated")
        return ", ".join(parts)


def cite_span(n: int, chunk: IndexedChunk, start: int, end: int) -> Citation:
    """Citation ``n`` for ``[start, end)`` (document offsets) inside ``chunk``, quote taken from it."""
    return Citation(
        n=n,
        doc_id=chunk.doc_id,
        title=chunk.title,
        source=chunk.source,
        url=chunk.url,
        published_at=chunk.published_at,
        chunk_id=chunk.id,
        start=start,
        end=end,
        quote=chunk.text[start - chunk.start : end - chunk.start],
    )


def quote_is_valid(citation: Citation, document_text: str) -> bool:
    """True when the quote is exactly the cited span of the document."""
    return 0 <= citation.start < citation.end <= len(document_text) and (
        document_text[citation.start : citation.end] == citation.quote
    )


def render_references(citations: list[Citation]) -> str:
    """Numbered reference list (markdown) for chat clients that only show text."""
    lines = []
    for c in citations:
        link = f" <{c.url}>" if c.url else ""
        lines.append(f'[{c.n}] {c.label()}{link} (doc {c.doc_id}, chars {c.start}-{c.end}): "{c.quote}"')
    return "\n".join(lines)
