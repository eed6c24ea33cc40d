"""Plain data types that flow through the index pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date


def content_hash(text: str) -> str:
    """Stable short hash of a text (sha256, first 16 hex digits)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """One source document, as loaded, before chunking."""

    id: str
    text: str
    title: str
    source: str | None = None  # outlet or origin, e.g. "Global News"
    url: str | None = None
    published_at: date | None = None
    path: str | None = None  # file it came from, when it came from a file

    @property
    def content_hash(self) -> str:
        """Hash over the text and the metadata a citation shows, so metadata edits re-index too."""
        meta = f"{self.title}\x00{self.source}\x00{self.url}\x00{self.published_at}"
        return content_hash(meta + "\x00" + self.text)


@dataclass(frozen=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text``.

    ``sentences`` are (start, end) spans in document coordinates, all inside the chunk.
    """

    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class DocumentInfo:
    """What the index knows about one stored document."""

    id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    path: str | None
    content_hash: str
    chunk_count: int
    chars: int
    added_at: str


@dataclass
class FileFailure:
    """One input that could not be indexed, and why."""

    source: str
    reason: str


@dataclass
class AddReport:
    """Outcome of adding documents: what changed, what was skipped, what failed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[FileFailure] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_removed: int = 0
    embedded_with: str = ""  # the backend that embedded the new chunks ("" when none were)

    @property
    def ok(self) -> bool:
        return not self.failed
