"""Typed configuration for every citeqa layer (env prefix ``CITEQA_``).

The settings live in ``index`` because data flows index -> qa -> api and all three read them.
Build them with :func:`get_settings`; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.errors import ConfigError

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
# Chunks per forward pass: 16 indexed SciFact 7-12% faster than 32 on a 2-core CPU, every backend
# (eval/README.md, "Batch size").
DEFAULT_EMBEDDING_BATCH_SIZE = 16


class Settings(BaseSettings):
    """Every setting citeqa reads; each field maps to ``CITEQA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CITEQA_", extra="ignore")

    # Storage
    data_dir: Path = Field(Path(".citeqa"), description="Where embedded Chroma keeps its files.")
    collection: str = Field("citeqa", description="Chroma collection name prefix.")
    chroma_url: str | None = Field(None, description="Chroma server URL, e.g. http://127.0.0.1:8001.")
    chroma_host: str | None = Field(None, description="Chroma server host (instead of chroma_url).")
    chroma_port: int = Field(8000, description="Chroma server port, used with chroma_host.")

    # Embedding and chunking
    embedding_model: str = Field(BUNDLED_MODEL, description="'bundled:...' or a local model path.")
    embedding_sha256: str | None = Field(
        None, description="Expected sha256 of model.safetensors for a non-bundled model."
    )
    embedding_batch_size: int = Field(
        DEFAULT_EMBEDDING_BATCH_SIZE, ge=1, le=1024, description="Chunks per forward pass."
    )
    embedding_backend: Literal["auto", "onnx-int8", "onnx", "torch", "torch-bf16"] = Field(
        "auto", description="Forward pass: onnx (ONNX Runtime), torch, auto (onnx when its export reproduces the "
        "torch vectors, on the CPU; an indexing job of >= 2,000 new chunks uses torch-bf16 where the CPU has "
        "native bf16 and it matches fp32 to cosine 0.9999), onnx-int8 (opt-in: 8-bit weights, faster indexing, "
        "near-identical vectors) "
        "or torch-bf16 (opt-in: bfloat16 autocast on a CPU with native bf16, faster indexing, cosine 0.9995).",
    )
    embedding_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs; auto is cuda when torch sees a GPU."
    )
    model_cache: Path | None = Field(None, description="Where the ONNX export is cached (default ~/.cache/citeqa).")
    chunk_size: int = Field(800, ge=100, le=8000, description="Target chunk size in characters.")
    chunk_overlap: int = Field(150, ge=0, description="Overlap between chunks in characters.")

    # Retrieval and answering
    top_k: int = Field(5, ge=1, le=50, description="Passages handed to the answerer.")
    dense_k: int = Field(30, ge=1, le=500, description="Candidates from dense search.")
    lexical_k: int = Field(30, ge=1, le=500, description="Candidates from BM25.")
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    dense_weight: float = Field(1.0, ge=0.0)
    lexical_weight: float = Field(1.0, ge=0.0)
    refusal_threshold: float | None = Field(
        None,
        ge=-1.0,
        le=1.0,
        description="Minimum estimated probability that the documents answer, to answer "
        "(unset: the answerability model's calibrated threshold; see eval/README.md).",
    )
    answerer: Literal["extractive", "llm"] = Field("extractive")

    # Optional LLM answerer (any OpenAI-compatible endpoint)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = Field(30.0, gt=0)

    # HTTP API
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: str | None = Field(None, description="Comma-separated bearer keys for /v1/*.")
    admin_keys: str | None = Field(None, description="Comma-separated keys for document changes.")
    cors_origins: str | None = Field(None, description="Comma-separated allowed CORS origins.")
    max_question_chars: int = Field(2000, ge=1)
    max_upload_bytes: int = Field(20_000_000, ge=1)
    snapshot_min_chunks: int = Field(
        5000,
        ge=0,
        description="Opening an index that had to read at least this many chunks from Chroma writes a snapshot of "
        "its chunk table and BM25 index to <data_dir>/snapshots, so the next start reads only what changed (0: never).",
    )
    lock_timeout: float = Field(
        60.0, ge=0, description="Seconds a writer waits for another process's lock on an embedded data dir."
    )

    @field_validator("chroma_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value:
            parsed = urlparse(value)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"must look like http://host:port, got {value!r}")
        return value or None

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def chroma_server(self) -> tuple[str, int, bool] | None:
        """(host, port, ssl) of the configured Chroma server, or None for embedded Chroma."""
        if self.chroma_url:
            parsed = urlparse(self.chroma_url)
            ssl = parsed.scheme == "https"
            return parsed.hostname or "", parsed.port or (443 if ssl else 80), ssl
        if self.chroma_host:
            return self.chroma_host, self.chroma_port, False
        return None


def split_list(value: str | None) -> list[str]:
    """Split a comma-separated setting into its non-empty items."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment plus explicit overrides.

    Raises:
        ConfigError: a value is invalid; the message names the ``CITEQA_*`` variable.
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            name = f"CITEQA_{field.upper()}" if err["loc"] else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
