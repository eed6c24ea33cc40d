"""Render an eval report as a terminal table, and gate it against a committed baseline."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.errors import BaselineError

# Metrics where higher is better; the gate fails when one drops by more than the tolerance.
HIGHER_IS_BETTER = (
    "doc_recall@",
    "doc_mrr",
    "span_recall@",
    "span_mrr",
    "ndcg@10",
    "answer_accuracy",
    "answer_f1",
    "citation_precision",
    "citation_precision_span",
    "citation_recall",
    "quote_validity",
    "refusal_precision",
    "refusal_recall",
    "refusal_f1",
    "conflict_coverage",
    "true_shown",
    "both_shown",
    "gold_docs_cited",
    "short_em",
    "short_f1",
    "noans_f1",
    "squad_em",
    "squad_f1",
    "answer_span_valid",
)
# Metrics where lower is better, with the rise allowed before the gate fails (None: the tolerance).
# A median word count moves in whole words, so it gets one word of slack.
LOWER_IS_BETTER: dict[str, float | None] = {"false_alone": None, "words_before_citation": 1.0}
# Reported, never gated: latency depends on the machine (timing belongs in benchmarks), counts describe.
NOT_GATED = ("cases", "quotes_checked", "answer_phrases", "latency_p50_ms", "latency_p95_ms")
DEFAULT_TOLERANCE = 0.02
_SHORT = {
    "date/timeline": "date",
    "name-variant": "names",
    "cross-source": "cross",
    "follow-up": "follow",
    "unanswerable": "unans",
}


@dataclass(frozen=True)
class Regression:
    """One metric that got worse than the baseline allows (or broke an invariant)."""

    group: str  # "overall" or a kind
    metric: str
    baseline: float | None
    current: float | None

    def __str__(self) -> str:
        def fmt(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.3f}"

        return f"{self.group}: {self.metric} {fmt(self.baseline)} -> {fmt(self.current)}"


def _gated(metric: str) -> bool:
    return any(metric == name or (name.endswith("@") and metric.startswith(name)) for name in HIGHER_IS_BETTER)


def invariant_failures(report: Mapping[str, Any]) -> list[Regression]:
    """Failures no baseline can excuse: any quote, or answer phrase, that is not exactly its span."""
    found = []
    for metric in ("quote_validity", "answer_span_valid"):
        validity = report["overall"].get(metric)
        if validity is not None and validity < 1.0:
            found.append(Regression("overall", metric, 1.0, validity))
    return found


def compare_with_baseline(
    report: Mapping[str, Any], baseline: Mapping[str, Any], *, tolerance: float = DEFAULT_TOLERANCE
) -> list[Regression]:
    """Metrics (overall and per kind) that fell more than ``tolerance`` below the baseline.

    A metric the baseline had and the run no longer produces counts as a drop; a new error counts too.

    Raises:
        BaselineError: the baseline is for another dataset or another cut-off k.
    """
    _check_same_eval(baseline, report)
    groups = [("overall", baseline.get("overall", {}), report["overall"])]
    groups += [(kind, base, report["by_kind"].get(kind, {})) for kind, base in baseline.get("by_kind", {}).items()]
    found = list(invariant_failures(report))
    for group, base, current in groups:
        for metric, old in base.items():
            new = current.get(metric)
            if metric == "errors":
                if (new or 0) > (old or 0):
                    found.append(Regression(group, metric, old, new))
            elif _gated(metric) and old is not None and (new is None or new < old - tolerance):
                found.append(Regression(group, metric, old, new))
            elif metric in LOWER_IS_BETTER and old is not None:
                allowed = LOWER_IS_BETTER[metric]
                if new is None or new > old + (tolerance if allowed is None else allowed):
                    found.append(Regression(group, metric, old, new))
    return found


def _check_same_eval(baseline: Mapping[str, Any], report: Mapping[str, Any]) -> None:
    for key in ("dataset", "k"):
        if baseline.get(key) != report.get(key):
            raise BaselineError(f"baseline {key} is {baseline.get(key)!r}, this run's is {report.get(key)!r}")


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read a committed baseline report."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline not found") from None
    except (OSError, ValueError) as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc}") from None
    if not isinstance(data, dict) or "overall" not in data:
        raise BaselineError(f"{path}: not an eval report (no 'overall')")
    return data


def baseline_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """What a committed baseline keeps: configuration and metrics, not the per-case answers."""
    return {key: value for key, value in report.items() if key != "cases"}


def _worse(metric: str, old: Any, new: Any) -> Any:
    lower_is_better = metric in LOWER_IS_BETTER or metric == "errors"
    if not (lower_is_better or _gated(metric)):
        return new  # described, not gated: this run's figure
    if old is None or new is None:
        return None  # one run lacks it: a figure kept here would fail that machine
    return max(old, new) if lower_is_better else min(old, new)


def keep_worse(previous: Mapping[str, Any], report: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline from ``report`` that keeps, for every gated metric, the worse of its figure and
    ``previous``'s: one baseline that holds on each machine it was saved on.

    The same code can score a case differently on another CPU: ONNX Runtime picks its kernels by
    instruction set, and a last-digit difference in a score can flip a tie (eval/README.md, "One
    baseline for several CPUs"). A metric only one of the two has is left ungated (None).

    Raises:
        BaselineError: ``previous`` is for another dataset or another cut-off k.
    """
    _check_same_eval(previous, report)
    merged = copy.deepcopy(baseline_view(report))
    pairs = [(merged["overall"], previous.get("overall", {}))]
    pairs += [(merged["by_kind"].setdefault(kind, {}), old) for kind, old in previous.get("by_kind", {}).items()]
    for current, old in pairs:
        for metric in {*old, *current} - set(NOT_GATED):
            current[metric] = _worse(metric, old.get(metric), current.get(metric))
    merged["merged_with"] = [*previous.get("merged_with", []), previous.get("created_at")]
    return merged


# terminal ---------------------------------------------------------------------------------------
def _cell(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric.endswith("_ms"):
        return f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def render_table(report: Mapping[str, Any]) -> str:
    """Metrics as rows, overall then each kind as columns; metrics that apply nowhere are left out."""
    groups: list[tuple[str, Mapping[str, Any]]] = [("overall", report["overall"])]
    if len(report["by_kind"]) > 1:
        groups += [(_SHORT.get(kind, kind[:8]), values) for kind, values in report["by_kind"].items()]
    metrics = [name for name in report["overall"] if any(values.get(name) is not None for _, values in groups)]
    width = max(len(name) for name in metrics) + 2
    cols = [max(8, len(name) + 1) for name, _ in groups]
    lines = [
        f"{report['dataset']}: {report['overall']['cases']} cases, k={report['k']}, "
        f"answerer={report['config']['answerer']}, refusal_threshold={report['config']['refusal_threshold']}",
        "metric".ljust(width) + "".join(name.rjust(c) for (name, _), c in zip(groups, cols, strict=True)),
    ]
    lines.append("-" * len(lines[-1]))
    for metric in metrics:
        cells = "".join(_cell(metric, values.get(metric)).rjust(c) for (_, values), c in zip(groups, cols, strict=True))
        lines.append(metric.ljust(width) + cells)
    return "\n".join(lines)


def render_problems(report: Mapping[str, Any], *, limit: int | None = 20) -> str:
    """The cases that went wrong, one line each with the answer's start."""
    from eval.scoring import CaseResult

    rows = []
    for data in report["cases"]:
        problems = CaseResult(**data).problems()
        if problems:
            answer = " ".join(str(data["answer"]).split())
            rows.append(
                f"  {data['id']:<12} {'; '.join(problems)}\n      Q: {data['question']}\n      A: {answer[:160]}"
            )
    if not rows:
        return "no failing cases"
    shown = rows if limit is None else rows[:limit]
    more = f"\n  ... and {len(rows) - len(shown)} more (--show-all)" if len(rows) > len(shown) else ""
    return f"{len(rows)} case(s) with problems:\n" + "\n".join(shown) + more
