"""The sample-news eval as a regression gate: no metric may fall below the committed baseline.

When a change improves the numbers on purpose, refresh the baseline in the same commit:
``citeqa eval sample-news --save-baseline eval/baselines/sample-news.json`` and, for the held-out
cases, ``citeqa eval eval/sample-news/heldout.jsonl --corpus data/sample-news --save-baseline
eval/baselines/sample-news-heldout.json``; for the public qa-dev sets (skipped when
``../shared/data/qa-dev`` or ``$CITEQA_QA_DEV`` is absent), ``citeqa eval squad2 --save-baseline
eval/baselines/squad2.json`` and the same for ``multihop-rag`` and ``rgb-counterfactual``.
The same code can score a case differently on another CPU; ``--keep-worse`` merges a second
machine's run into a baseline (eval/README.md, "One baseline for several CPUs").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from api.cli import main
from eval.datasets import QA_DEV_SETS, SAMPLE_NEWS_CORPUS, load_qa_dev, load_qa_jsonl, load_sample_news, qa_dev_dir
from eval.report import DEFAULT_TOLERANCE, compare_with_baseline, invariant_failures, load_baseline
from eval.runner import build_report, eval_index, run_eval
from index.embedding import Embedder
from qa.service import QAService
from tests.conftest import ROOT, make_settings

BASELINE = ROOT / "eval" / "baselines" / "sample-news.json"
HELD_OUT = ROOT / "eval" / "sample-news" / "heldout.jsonl"
HELD_OUT_BASELINE = ROOT / "eval" / "baselines" / "sample-news-heldout.json"


@pytest.fixture(scope="module")
def sample_news_report(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> dict[str, Any]:
    """The sample-news eval run once on a real index built the way `citeqa eval` builds it."""
    dataset = load_sample_news()
    settings = make_settings(tmp_path_factory.mktemp("eval-sample-news"))
    with eval_index(dataset, settings, embedder=embedder) as index:
        service = QAService(index=index, settings=index.settings)
        results = run_eval(dataset, service)
        return build_report(dataset, results, service=service, k=10)


def test_every_citation_quotes_its_document_exactly(sample_news_report: dict[str, Any]) -> None:
    overall = sample_news_report["overall"]
    assert overall["quotes_checked"] > 0
    invalid = [q for case in sample_news_report["cases"] for q in case["invalid_quotes"]]
    assert invalid == [] and overall["quote_validity"] == 1.0


def test_no_metric_falls_below_the_committed_baseline(sample_news_report: dict[str, Any]) -> None:
    regressions = compare_with_baseline(sample_news_report, load_baseline(BASELINE), tolerance=DEFAULT_TOLERANCE)
    assert not regressions, "below eval/baselines/sample-news.json:\n" + "\n".join(map(str, regressions))


def test_held_out_cases_stay_at_their_baseline(tmp_path: Path, embedder: Embedder) -> None:
    """Cases written after the answerer's rules, to show whether they generalise (eval/README.md)."""
    dataset = load_qa_jsonl(HELD_OUT, corpus=SAMPLE_NEWS_CORPUS)
    with eval_index(dataset, make_settings(tmp_path), embedder=embedder) as index:
        service = QAService(index=index, settings=index.settings)
        report = build_report(dataset, run_eval(dataset, service), service=service, k=10)
    assert report["overall"]["quote_validity"] == 1.0
    regressions = compare_with_baseline(report, load_baseline(HELD_OUT_BASELINE), tolerance=DEFAULT_TOLERANCE)
    assert not regressions, f"below {HELD_OUT_BASELINE.name}:\n" + "\n".join(map(str, regressions))


@pytest.fixture(scope="module", params=QA_DEV_SETS)
def qa_dev_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, embedder: Embedder
) -> dict[str, Any]:
    """One qa-dev set's eval, on its own index built once for this module (the session's model)."""
    name = request.param
    if not (qa_dev_dir() / name / "questions.jsonl").is_file():
        pytest.skip(f"qa-dev set {name!r} not found under {qa_dev_dir()} (set CITEQA_QA_DEV)")
    dataset = load_qa_dev(name)
    with eval_index(dataset, make_settings(tmp_path_factory.mktemp(f"eval-{name}")), embedder=embedder) as index:
        service = QAService(index=index, settings=index.settings)
        return build_report(dataset, run_eval(dataset, service), service=service, k=10)


def test_qa_dev_set_stays_at_its_baseline(qa_dev_report: dict[str, Any]) -> None:
    """Public dev sets nobody here wrote: squad2, multihop-rag, rgb-counterfactual (eval/README.md)."""
    name = qa_dev_report["dataset"]
    assert invariant_failures(qa_dev_report) == []  # every quote and answer phrase is exactly its span
    baseline = ROOT / "eval" / "baselines" / f"{name}.json"
    regressions = compare_with_baseline(qa_dev_report, load_baseline(baseline), tolerance=DEFAULT_TOLERANCE)
    assert not regressions, f"below {baseline.name}:\n" + "\n".join(map(str, regressions))


def test_cli_exits_non_zero_when_a_metric_drops_below_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    baseline = load_baseline(BASELINE)
    baseline["overall"]["answer_accuracy"] = 1.01  # a bar no run can meet
    raised = tmp_path / "raised-baseline.json"
    raised.write_text(json.dumps(baseline))
    out = tmp_path / "report.json"
    code = main(["eval", "sample-news", "--baseline", str(raised), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "overall: answer_accuracy 1.010 ->" in captured.err
    assert "answer_accuracy" in captured.out  # the table is still printed
    report = json.loads(out.read_text())
    assert len(report["cases"]) == len(load_sample_news().cases)
