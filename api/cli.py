"""The ``citeqa`` command line: thin commands that call one library function each and render.

Errors from the library become one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from index.errors import CiteqaError
from index.settings import Settings, get_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def tqdm_progress(total: int, description: str) -> Any:
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="chunk", file=sys.stderr, disable=None, dynamic_ncols=True)


def open_index(settings: Settings, *, embeds: bool = True, recover: bool = True) -> Any:
    """The index; ``embeds=False`` for commands that never embed (list, rm, stats), which then
    skip loading the model (its weights are still verified against the index)."""
    from index.pipeline import DocumentIndex

    print("loading the embedding model and the index ..." if embeds else "opening the index ...", file=sys.stderr)
    return DocumentIndex.open(settings, load_model=embeds, recover=recover)


def hold_write_lock(settings: Settings) -> None:
    """For commands that write: hold the embedded data dir's write lock until the process exits, so
    a second writer waits for this one (up to CITEQA_LOCK_TIMEOUT) instead of corrupting Chroma."""
    if settings.chroma_server:
        return
    from index.locking import command_line, dir_lock

    dir_lock(settings.data_dir, "write.lock").acquire(timeout=settings.lock_timeout, purpose=command_line())


def emit_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))


# index commands -------------------------------------------------------------------------------
def cmd_index_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add files or directories to the index (unchanged documents are skipped)."""
    hold_write_lock(settings)
    index = open_index(settings)
    report = index.add_paths(args.paths, progress=tqdm_progress)
    if args.json:
        emit_json(asdict(report))
    else:
        for doc_id in report.added:
            print(f"added      {doc_id}")
        for doc_id in report.updated:
            print(f"updated    {doc_id}")
        for doc_id in report.unchanged:
            print(f"unchanged  {doc_id} (already indexed, nothing to do)")
        for failure in report.failed:
            print(f"FAILED     {failure.source}: {failure.reason}", file=sys.stderr)
        embedded_with = f" (embedded with {report.embedded_with})" if report.embedded_with else ""
        print(
            f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
            f"{len(report.failed)} failed; {report.chunks_embedded} chunks embedded{embedded_with}, "
            f"{report.chunks_removed} removed"
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_index_list(args: argparse.Namespace, settings: Settings) -> int:
    """List indexed documents with their chunk counts."""
    docs = open_index(settings, embeds=False).list_documents()
    if args.json:
        emit_json([asdict(d) for d in docs])
        return EXIT_OK
    if not docs:
        print("no documents indexed")
    for d in docs:
        date = d.published_at or "undated"
        print(f"{d.id}  chunks={d.chunk_count}  {date}  {d.title[:70]}")
    return EXIT_OK


def cmd_index_rm(args: argparse.Namespace, settings: Settings) -> int:
    """Delete documents (and their chunks) by id."""
    hold_write_lock(settings)
    index = open_index(settings, embeds=False)
    status = EXIT_OK
    for doc_id in args.doc_ids:
        try:
            removed = index.delete(doc_id)
        except CiteqaError as exc:
            print(f"citeqa: {exc}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        print(f"deleted {doc_id} ({removed} chunks)")
    return status


def cmd_index_stats(args: argparse.Namespace, settings: Settings) -> int:
    """Show document, chunk and disk figures for the index."""
    stats = open_index(settings, embeds=False).stats()
    if args.json:
        emit_json(asdict(stats))
    else:
        for key, value in asdict(stats).items():
            print(f"{key:16} {value}")
    return EXIT_OK


def cmd_index_check(args: argparse.Namespace, settings: Settings) -> int:
    """Check that chunks and the document registry agree; --repair mends what a crash left."""
    from index.integrity import check_index, repair_index

    if args.repair:
        hold_write_lock(settings)
    # opening normally deletes orphan chunks when no other writer is active: check what is there
    # before that, so the report says what a crash left
    index = open_index(settings, embeds=bool(args.repair), recover=False)
    found = check_index(index)
    repaired = repair_index(index, found) if args.repair and not found.ok else None
    if args.json:
        emit_json({**asdict(found), "ok": found.ok, "repaired": asdict(repaired) if repaired else None})
    else:
        print(f"{found.documents} documents, {found.chunks} chunks")
        print(f"orphan chunks (no document lists them): {len(found.orphan_chunks)}")
        missing = sum(len(v) for v in found.missing_chunks.values())
        print(f"missing chunks (listed but not stored): {missing} in {len(found.missing_chunks)} documents")
        if repaired is not None:
            print(f"repaired: {repaired.orphan_chunks_deleted} orphan chunks deleted, "
                  f"{len(repaired.documents_reindexed)} documents re-indexed")
        elif found.ok:
            print("ok")
        else:
            print("run `citeqa index check --repair` to mend this", file=sys.stderr)
    return EXIT_OK if found.ok or repaired is not None else EXIT_FAILED


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    """Load the embedding model (exporting it to ONNX once, if needed) and show what runs it."""
    from index.embedding import BULK_MIN_CHUNKS, Embedder
    from index.onnx_export import onnx_file, read_record

    print("loading the embedding model ...", file=sys.stderr)
    embedder = Embedder.from_settings(settings)
    export = onnx_file(embedder.cache_dir, embedder.weights_sha256, int8=embedder.backend == "onnx-int8")
    record = read_record(export) if embedder.backend.startswith("onnx") else None
    info = {
        "model": embedder.name,
        "weights_sha256": embedder.weights_sha256,
        "dimension": embedder.dim,
        "backend": embedder.backend,
        "device": embedder.encoder.device,
        "onnx_file": str(export) if record else None,
        "onnx_sha256": record.onnx_sha256 if record else None,
        "onnx_min_cosine_to_torch": record.min_cosine if record else None,
        "large_jobs_backend": None,  # what embeds an `index add` of BULK_MIN_CHUNKS new chunks or more
        "bf16_min_cosine_to_fp32": embedder.check_min_cosine,
        "notice": embedder.backend_notice or None,
    }
    info["large_jobs_backend"] = embedder.chunk_encoder(BULK_MIN_CHUNKS).backend  # loads and checks it
    info["bf16_min_cosine_to_fp32"] = embedder.check_min_cosine
    info["notice"] = "; ".join(n for n in (embedder.backend_notice, embedder.bulk_notice) if n) or None
    if args.json:
        emit_json(info)
    else:
        for key, value in info.items():
            print(f"{key:26} {value}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the HTTP API (and the chat page) with uvicorn."""
    import uvicorn

    from api.app import create_app

    hold_write_lock(settings)  # the server writes (uploads): one writer per embedded data dir
    if args.load:
        report = open_index(settings).add_paths(args.load, progress=tqdm_progress)
        print(
            f"indexed {args.load}: {len(report.added)} added, {len(report.updated)} updated, "
            f"{len(report.unchanged)} unchanged, {len(report.failed)} failed",
            file=sys.stderr,
        )
    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
    return EXIT_OK


def build_parser(extra: Sequence[Callable[[Any], None]] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="citeqa", description="Answers from your documents, with checkable citations."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    index_parser = sub.add_parser("index", help="manage the document index")
    index = index_parser.add_subparsers(dest="index_command", required=True)
    add = index.add_parser("add", help=cmd_index_add.__doc__)
    add.add_argument("paths", nargs="+", help="files or directories (.txt .md .html .pdf .jsonl)")
    add.add_argument("--json", action="store_true", help="print the report as JSON")
    add.set_defaults(func=cmd_index_add)
    lst = index.add_parser("list", help=cmd_index_list.__doc__)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_index_list)
    rm = index.add_parser("rm", help=cmd_index_rm.__doc__)
    rm.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    rm.set_defaults(func=cmd_index_rm)
    stats = index.add_parser("stats", help=cmd_index_stats.__doc__)
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_index_stats)
    check = index.add_parser("check", help=cmd_index_check.__doc__)
    check.add_argument("--repair", action="store_true", help="delete orphan chunks, re-index damaged documents")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_index_check)

    model = sub.add_parser("model", help=cmd_model.__doc__)
    model.add_argument("--json", action="store_true")
    model.set_defaults(func=cmd_model)

    serve = sub.add_parser("serve", help=cmd_serve.__doc__)
    serve.add_argument("--host", default=None, help="bind address (default CITEQA_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default CITEQA_PORT, 8000)")
    serve.add_argument("--load", nargs="*", default=[], help="index these paths before serving")
    serve.set_defaults(func=cmd_serve)

    for register in extra:
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    """Commands defined next to the layers they drive (answering, eval)."""
    registers: list[Callable[[Any], None]] = []
    for module_name in ("api.cli_qa", "eval.cli"):
        try:
            module = __import__(module_name, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        registers.append(module.register)
    return registers


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(_extra_commands())
    args = parser.parse_args(argv)
    try:
        settings = get_settings()
        return int(args.func(args, settings))
    except CiteqaError as exc:
        print(f"citeqa: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("citeqa: interrupted; everything written before the interruption is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
