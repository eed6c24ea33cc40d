"""Fixtures for the answering tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.embedding import Embedder
from index.pipeline import DocumentIndex
from tests.conftest import make_settings

PLANTED_DIR = Path(__file__).resolve().parents[1] / "data" / "planted"


@pytest.fixture(scope="session")
def planted_index(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> DocumentIndex:
    """Three short news items, each with an instruction planted in it (read-only for tests)."""
    index = DocumentIndex.open(make_settings(tmp_path_factory.mktemp("planted")), embedder=embedder)
    assert index.add_paths([PLANTED_DIR]).ok
    return index
