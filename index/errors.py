"""Domain errors for citeqa (shared by index, qa and api).

Hierarchy::

    CiteqaError
    ├── ConfigError            a setting is invalid
    ├── ModelError             the embedding model is missing, corrupt or not the one the index uses
    ├── StoreError             Chroma is unreachable or answered unexpectedly
    ├── DocumentError          one input document cannot be indexed (unreadable, empty, binary, malformed)
    │   └── UnsupportedFileType
    ├── DocumentNotFound       no document with that id
    └── InvalidRequest         a question, filter or parameter is not acceptable
"""

from __future__ import annotations


class CiteqaError(Exception):
    """Base class for every error citeqa raises on purpose."""


class ConfigError(CiteqaError):
    """A configuration value is invalid."""


class ModelError(CiteqaError):
    """The embedding model cannot be used."""


class StoreError(CiteqaError):
    """The vector store failed or is unreachable."""


class DocumentError(CiteqaError):
    """One input document cannot be indexed; ``source`` names it."""

    def __init__(self, source: str, reason: str, *, param: str | None = None) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.param = param  # the field at fault, when one is (e.g. "id")


class UnsupportedFileType(DocumentError):
    """The file's type is not one citeqa loads."""


class DocumentNotFound(CiteqaError):
    """No indexed document has the given id."""

    def __init__(self, doc_id: str) -> None:
        super().__init__(f"no document with id {doc_id!r}")
        self.doc_id = doc_id


class InvalidRequest(CiteqaError):
    """A question or a parameter is not acceptable; ``param`` names it when there is one."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param
