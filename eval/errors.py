"""Errors the eval raises on purpose.

Hierarchy (under the shared :class:`index.errors.CiteqaError`)::

    CiteqaError
    └── EvalError
        ├── DatasetError     a dataset file is missing or malformed, or its evidence is not in the corpus
        └── BaselineError    a baseline report cannot be read or does not fit the report it is compared with
"""

from __future__ import annotations

from index.errors import CiteqaError


class EvalError(CiteqaError):
    """Base class for eval errors."""


class DatasetError(EvalError):
    """A dataset cannot be used; the message names the file (and line or field)."""


class BaselineError(EvalError):
    """A baseline report cannot be used."""
