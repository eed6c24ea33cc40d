"""Load documents from files: .txt, .md, .html/.htm, .pdf and .jsonl records.

Metadata (id, title, source, url, published_at) comes from, in order: a sidecar
``<stem>.meta.json`` beside the file, front matter at the top of a .txt/.md file
(``---`` lines around ``key: value`` pairs), the file itself (HTML metadata, a Markdown
heading, the first line), and finally the file name.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from index.errors import DocumentError, UnsupportedFileType
from index.models import Document, FileFailure

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")
SIDECAR_SUFFIX = ".meta.json"
_META_KEYS = ("id", "title", "source", "url", "published_at")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
DOC_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$"
DOC_ID_RULE = "1-200 ASCII letters, digits, '.', '_' or '-', starting with a letter, digit or '_'"
_DOC_ID = re.compile(DOC_ID_PATTERN)


@dataclass
class LoadResult:
    """Documents that loaded and the inputs that failed, each with its reason."""

    documents: list[Document] = field(default_factory=list)
    failures: list[FileFailure] = field(default_factory=list)


def check_doc_id(raw: str) -> str:
    """A document id exactly as given, when it is safe in URLs and file names.

    Raises:
        ValueError: the id does not match :data:`DOC_ID_PATTERN`; the message says what would.
    """
    if not _DOC_ID.match(raw):
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        raise ValueError(f"id {shown!r} is not a valid document id: use {DOC_ID_RULE}")
    return raw


def derive_doc_id(raw: str) -> str:
    """A document id derived from a file name or title: the name itself when it is a valid id, else
    an ASCII slug plus a hash of the whole name, so two different names never share an id
    ("a b c" and "a/b/c" do not both become "a-b-c")."""
    if _DOC_ID.match(raw):
        return raw
    ascii_name = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    slug = _ID_UNSAFE.sub("-", ascii_name).strip("-.")[:180]
    digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"{slug}-{digest}" if slug else f"doc-{digest}"


def parse_date(value: Any, *, source: str) -> date | None:
    """Parse an ISO date or datetime; None stays None."""
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise DocumentError(source, f"published_at {text!r} is not an ISO date") from None


def iter_files(paths: Iterable[str | Path]) -> Iterator[Path | FileFailure]:
    """Expand paths into supported files (directories recursively, hidden files skipped)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                rel = child.relative_to(path)
                if any(part.startswith(".") for part in rel.parts) or not child.is_file():
                    continue
                if child.name.endswith(SIDECAR_SUFFIX):
                    continue
                if child.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield child
        elif path.is_file():
            yield path
        else:
            yield FileFailure(str(path), "no such file or directory")


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Load every supported document under ``paths``.

    A file that cannot be loaded is reported in ``failures`` with its reason; the rest still load.
    Two inputs with the same document id: the second is reported as a failure.
    """
    result = LoadResult()
    seen: dict[str, str] = {}
    for item in iter_files(paths):
        if isinstance(item, FileFailure):
            result.failures.append(item)
            continue
        try:
            docs = load_file(item, failures=result.failures)
        except DocumentError as exc:
            result.failures.append(FileFailure(exc.source, exc.reason))
            continue
        for doc in docs:
            where = doc.path or str(item)
            if doc.id in seen:
                result.failures.append(FileFailure(where, f"document id {doc.id!r} already used by {seen[doc.id]}"))
                continue
            seen[doc.id] = where
            result.documents.append(doc)
    return result


def load_file(path: Path, *, failures: list[FileFailure] | None = None) -> list[Document]:
    """Load one file into one document (or several, for .jsonl).

    Args:
        path: the file.
        failures: when given, a bad .jsonl record is reported here and the file's other records
            still load; without it the first bad record raises.

    Raises:
        DocumentError: the file is unreadable, empty, binary or malformed.
        UnsupportedFileType: the suffix is not one citeqa loads.
    """
    suffix = path.suffix.lower()
    source = str(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedFileType(
            source, f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DocumentError(source, f"cannot read: {exc.strerror or exc}") from exc
    return load_bytes(data, name=path.name, source=source, sidecar=_read_sidecar(path), failures=failures)


def load_bytes(
    data: bytes,
    *,
    name: str,
    source: str | None = None,
    sidecar: dict[str, Any] | None = None,
    failures: list[FileFailure] | None = None,
) -> list[Document]:
    """Load a document from raw bytes; ``name`` decides the type by its suffix (uploads use this).

    ``failures`` works as in :func:`load_file`.
    """
    source = source or name
    suffix = Path(name).suffix.lower()
    meta = dict(sidecar or {})
    if suffix == ".pdf":
        text, file_meta = _pdf_text(data, source)
    elif suffix == ".jsonl":
        return _jsonl_documents(_decode(data, source), source=source, failures=failures)
    elif suffix in (".html", ".htm"):
        text, file_meta = _html_text(_decode(data, source), source)
    elif suffix in (".txt", ".md", ".markdown"):
        text, file_meta = _plain_text(_decode(data, source), markdown=suffix != ".txt")
    else:
        raise UnsupportedFileType(
            source, f"unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    for key, value in file_meta.items():
        meta.setdefault(key, value)
    if not meta.get("id"):
        # the whole name without its suffix, directories included, so "../x.txt" is not "x"
        meta["id"] = derive_doc_id(name[: -len(suffix)] if suffix else name)
    return [_document(text, meta, source=source, path=source)]


def document_from_record(record: dict[str, Any], *, source: str) -> Document:
    """Build a document from a JSON record with ``id``/``_id``, ``text`` and optional metadata."""
    if not isinstance(record, dict):
        raise DocumentError(source, "record is not a JSON object")
    rid = record.get("id", record.get("_id"))
    if rid in (None, ""):
        raise DocumentError(source, "record has no 'id'")
    text = record.get("text")
    if not isinstance(text, str):
        raise DocumentError(source, "record has no string 'text'")
    meta = {key: record.get(key) for key in _META_KEYS}
    meta["id"] = str(rid)
    return _document(text, meta, source=source, path=record.get("path"))


def _document(text: str, meta: dict[str, Any], *, source: str, path: str | None) -> Document:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DocumentError(source, "empty: no text to index")
    for key in ("text", *_META_KEYS):
        value = text if key == "text" else meta.get(key)
        if isinstance(value, str) and ("\x00" in value or not value.isprintable() and _has_surrogate(value)):
            raise DocumentError(source, f"{key} contains a NUL character or a lone surrogate", param=key)
    try:
        doc_id = check_doc_id(str(meta["id"]))
    except ValueError as exc:
        raise DocumentError(source, str(exc), param="id") from None
    title = str(meta.get("title") or "").strip() or _first_line(text) or doc_id
    return Document(
        id=doc_id,
        text=text,
        title=title,
        source=_opt_str(meta.get("source")),
        url=_opt_str(meta.get("url")),
        published_at=parse_date(meta.get("published_at"), source=source),
        path=path,
    )


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _opt_str(value: Any) -> str | None:
    return str(value).strip() or None if value not in (None, "") else None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return ""


def _decode(data: bytes, source: str) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(source, "binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not UTF-8 text (byte {exc.start})") from None


def _read_sidecar(path: Path) -> dict[str, Any]:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DocumentError(str(sidecar), f"malformed metadata sidecar: {exc}") from exc
    if not isinstance(meta, dict):
        raise DocumentError(str(sidecar), "metadata sidecar must be a JSON object")
    return {k: v for k, v in meta.items() if k in _META_KEYS}


def _plain_text(text: str, *, markdown: bool) -> tuple[str, dict[str, Any]]:
    # Normalise line ends first, or front matter written with CRLF would stay in the text.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    meta: dict[str, Any] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        for line in match.group(1).splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in _META_KEYS:
                meta[key.strip()] = value.strip().strip("\"'")
        text = text[match.end() :]
    if markdown and "title" not in meta:
        heading = re.search(r"^#\s+(.+)$", text, re.M)
        if heading:
            meta["title"] = heading.group(1).strip()
    return text, meta


def _html_text(html: str, source: str) -> tuple[str, dict[str, Any]]:
    import trafilatura  # imported lazily: it is slow to import and only HTML needs it

    text = trafilatura.extract(html, include_comments=False, include_tables=True, favor_recall=True)
    if not text or not text.strip():
        raise DocumentError(source, "no main text found in the HTML")
    meta: dict[str, Any] = {}
    # extensive=False: take dates from markup only; the extensive search reads dates out of the
    # page text (a "Copyright 2024" footer becomes 2024-01-01), which would be cited as the date.
    info = trafilatura.extract_metadata(html, extensive=False)
    if info is not None:
        for key, attr in (("title", "title"), ("url", "url"), ("source", "sitename"), ("published_at", "date")):
            value = getattr(info, attr, None)
            if value:
                meta[key] = value
    return text, meta


def _pdf_text(data: bytes, source: str) -> tuple[str, dict[str, Any]]:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(source, f"malformed PDF: {exc}") from None
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise DocumentError(source, "PDF has no text layer (scanned images are not OCRed)")
    meta: dict[str, Any] = {}
    info = reader.metadata
    if info is not None and info.title:
        meta["title"] = str(info.title)
    return text, meta


def _jsonl_documents(text: str, *, source: str, failures: list[FileFailure] | None) -> list[Document]:
    docs: list[Document] = []
    bad = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        try:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise DocumentError(where, f"malformed JSON: {exc}") from None
            doc = document_from_record(record, source=where)
        except DocumentError as exc:
            if failures is None:
                raise
            # One bad record must not cost the file's other records.
            failures.append(FileFailure(exc.source, exc.reason))
            bad += 1
            continue
        docs.append(Document(**{**doc.__dict__, "path": where}))
    if not docs and not bad:
        raise DocumentError(source, "empty: no records")
    return docs
