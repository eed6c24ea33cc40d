"""Metrics on small hand-made inputs whose right values are worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval import metrics as m
from eval.datasets import DatasetError, load_beir, load_qa_jsonl, load_sample_news, verify_evidence
from eval.report import compare_with_baseline, invariant_failures, render_table
from eval.runner import CaseResult, summarize


def test_normalization_ignores_case_punctuation_articles_and_citation_markers() -> None:
    assert m.normalize_answer("The Observatory's count [1], Al-Bagdadi: 95%! [2, 3]") == (
        "observatory count al bagdadi 95"
    )


def test_answer_match_needs_whole_words_of_an_accepted_answer() -> None:
    text = "Iranian Brig. Gen. Khayrallah Samadi was killed by a mortar shell [1]."
    assert m.answer_matches(text, ["Qasem Soleimani", "khayrallah samadi"])
    assert not m.answer_matches(text, ["Samad"])  # a word fragment is not a match
    assert not m.answer_matches("more than 300 deaths", ["30"])
    assert m.answer_matches("more than 30 deaths [2]", ["more than 30"])
    assert not m.answer_matches("anything", [])


def test_token_f1_by_hand() -> None:
    # prediction tokens: more than 30 deaths (4); gold: more than 30 (3); common 3
    # precision 3/4, recall 3/3 -> F1 = 2 * 0.75 * 1 / 1.75
    assert m.token_f1("more than 30 deaths", "more than 30") == pytest.approx(1.5 / 1.75)
    assert m.token_f1("Rawa", "Al Qaim") == 0.0
    # "locality of rawa" (the article goes) against "rawa": precision 1/3, recall 1 -> F1 0.5
    assert m.best_token_f1("the locality of Rawa", ["Al Qaim", "Rawa"]) == pytest.approx(0.5)


def test_spans_find_every_occurrence_and_overlap_is_half_open() -> None:
    assert m.find_spans("abcabc", "bc") == [(1, 3), (4, 6)]
    assert m.find_spans("aaa", "aa") == [(0, 2), (1, 3)]
    assert m.find_spans("abc", "x") == []
    assert m.spans_overlap((0, 5), (4, 9))
    assert not m.spans_overlap((0, 5), (5, 9))  # touching spans share no character


def test_ranking_metrics_by_hand() -> None:
    assert m.reciprocal_rank([False, False, True, True]) == pytest.approx(1 / 3)
    assert m.reciprocal_rank([False]) == 0.0
    assert m.recall_at_k(["a", "b", "c", "d"], {"c", "z"}, 3) == 0.5
    assert m.recall_at_k(["a", "b", "c", "d"], {"c", "z"}, 2) == 0.0
    assert m.unique_in_order(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]
    # one relevant document at rank 2: DCG = 1/log2(3); IDCG = 1
    assert m.ndcg_at_k(["x", "a", "y"], {"a": 1}, 10) == pytest.approx(1 / math.log2(3))
    # graded: relevant a (2) at rank 2, b (1) at rank 1
    dcg = 1 / math.log2(2) + 2 / math.log2(3)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m.ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx(dcg / idcg)
    assert m.ndcg_at_k(["a"], {"a": 1, "b": 1}, 1) == 1.0  # the cut-off bounds the ideal list too


def test_percentile_matches_numpy_linear_interpolation() -> None:
    values = [10.0, 20.0, 30.0, 40.0]
    assert m.percentile(values, 50) == 25.0
    assert m.percentile(values, 95) == pytest.approx(38.5)
    assert m.percentile([], 50) is None


def test_refusal_precision_and_recall_by_hand() -> None:
    refused = [True, True, False, False, True]
    answerable = [False, True, False, True, False]
    # right refusals: cases 0 and 4 -> precision 2/3; unanswerable: 0, 2, 4 -> recall 2/3
    assert m.refusal_precision_recall(refused, answerable) == pytest.approx((2 / 3, 2 / 3))
    assert m.refusal_precision_recall([False], [True]) == (None, None)


def _result(**fields: object) -> CaseResult:
    base: dict[str, object] = {"id": "c", "kind": "factual", "question": "q?"}
    return CaseResult(**{**base, **fields})  # type: ignore[arg-type]


def test_summary_aggregates_over_the_cases_each_metric_applies_to() -> None:
    results = [
        _result(id="a", answerable=True, correct=True, f1=0.5, citations=2, citations_on_gold_doc=2,
                citations_on_gold_span=1, cites_gold_evidence=True, quotes_checked=2, doc_recall=1.0, doc_rr=1.0,
                latency_ms=10.0),
        _result(id="b", answerable=True, refused=True, correct=False, f1=0.0, quotes_checked=1, doc_recall=1.0,
                doc_rr=0.5, latency_ms=20.0),
        _result(id="c", kind="unanswerable", answerable=False, refused=True, latency_ms=30.0),
        _result(id="d", kind="conflict", answerable=True, correct=True, f1=1.0, citations=2, citations_on_gold_doc=1,
                citations_on_gold_span=0, cites_gold_evidence=False, quotes_checked=2,
                invalid_quotes=["[2] bad"], doc_recall=0.5, doc_rr=1.0, conflict_covered=False, latency_ms=40.0),
    ]
    s = summarize(results, k=5)
    assert s["cases"] == 4
    assert s["answer_accuracy"] == pytest.approx(2 / 3)
    assert s["answer_f1"] == pytest.approx(1.5 / 3)
    assert s["citation_precision"] == pytest.approx(3 / 4)  # a and d answered; b refused
    assert s["citation_precision_span"] == pytest.approx(1 / 4)
    assert s["citation_recall"] == pytest.approx(1 / 2)
    assert s["quote_validity"] == pytest.approx(4 / 5)
    assert s["refusal_precision"] == pytest.approx(1 / 2)
    assert s["refusal_recall"] == 1.0
    assert s["conflict_coverage"] == 0.0
    assert s["doc_recall@5"] == pytest.approx(2.5 / 3)
    assert s["doc_mrr"] == pytest.approx(2.5 / 3)
    assert s["span_recall@5"] is None and s["ndcg@10"] is None
    assert s["latency_p50_ms"] == 25.0


def _report(**overall: float) -> dict[str, object]:
    metrics = {"cases": 3, "answer_accuracy": 0.9, "quote_validity": 1.0, "latency_p50_ms": 10.0, "errors": 0}
    metrics.update(overall)
    return {"dataset": "d", "k": 10, "config": {"answerer": "extractive", "refusal_threshold": 0.4},
            "overall": metrics, "by_kind": {"factual": dict(metrics)}, "cases": []}


def test_baseline_gate_fails_on_drops_beyond_tolerance_and_on_any_invalid_quote() -> None:
    baseline = _report()
    assert compare_with_baseline(_report(answer_accuracy=0.89), baseline, tolerance=0.02) == []
    drops = compare_with_baseline(_report(answer_accuracy=0.85), baseline, tolerance=0.02)
    assert [(d.group, d.metric) for d in drops] == [("overall", "answer_accuracy"), ("factual", "answer_accuracy")]
    assert compare_with_baseline(_report(latency_p50_ms=500.0), baseline) == []  # timing is not gated
    assert {d.metric for d in compare_with_baseline(_report(errors=1), baseline)} == {"errors"}
    invalid = _report(quote_validity=0.999)
    assert [d.metric for d in invariant_failures(invalid)] == ["quote_validity"]
    assert "quote_validity" in {d.metric for d in compare_with_baseline(invalid, _report(quote_validity=0.5))}


def test_table_shows_every_applicable_metric() -> None:
    table = render_table(_report())
    assert "answer_accuracy" in table and "0.900" in table and "latency_p50_ms" in table


def test_sample_news_cases_are_well_formed_and_quote_their_documents_verbatim() -> None:
    dataset = load_sample_news()
    kinds = [c.kind for c in dataset.cases]
    assert len(dataset.cases) >= 40 and kinds.count("unanswerable") >= 10
    assert {"factual", "number", "date/timeline", "name-variant", "cross-source", "conflict", "follow-up"} <= set(kinds)
    texts = {d.id: d.text for d in dataset.documents}
    assert verify_evidence(dataset.cases, texts) == []
    for case in dataset.cases:
        assert bool(case.answers) == bool(case.evidence), case.id
        if case.kind == "conflict":
            assert {e.doc_id for e in case.evidence} == set(texts), case.id
        if case.kind == "follow-up":
            assert case.history, case.id


def test_qa_jsonl_errors_name_the_file_line_and_field(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Rawa is a town on the Euphrates.")
    questions = tmp_path / "qa.jsonl"
    questions.write_text(json.dumps({"question": "Where is Rawa?", "answers": ["Euphrates"]}) + "\n\n"
                         + json.dumps({"question": "x", "answers": "Euphrates"}) + "\n")
    with pytest.raises(DatasetError, match=r"qa\.jsonl:3: 'answers'"):
        load_qa_jsonl(questions, corpus=corpus)
    questions.write_text(json.dumps({"question": "Where is Rawa?", "answers": ["Euphrates"],
                                     "evidence": [{"doc_id": "a", "quote": "on the Euphrates"}]}) + "\n")
    dataset = load_qa_jsonl(questions, corpus=corpus)
    assert dataset.cases[0].answerable and dataset.cases[0].gold_docs == {"a"}
    assert verify_evidence(dataset.cases, {"a": "something else"})[0].startswith("q1: quote not found")


def test_beir_loader_keeps_judged_queries_and_puts_titles_in_the_text(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "Mortar shells", "text": "A general was killed."}) + "\n"
        + json.dumps({"_id": "d2", "title": "", "text": "Graves were found."}) + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(
        json.dumps({"_id": "1", "text": "who was killed"}) + "\n" + json.dumps({"_id": "2", "text": "unjudged"}) + "\n"
    )
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t0\n")
    dataset = load_beir(tmp_path)
    assert [c.id for c in dataset.cases] == ["1"]
    assert dataset.cases[0].gold_docs == {"d1"} and dataset.cases[0].answerable is None
    docs = {d.id: d for d in dataset.documents}
    assert docs["d1"].text == "Mortar shells\n\nA general was killed." and docs["d1"].title == "Mortar shells"
    assert docs["d2"].text == "Graves were found."
    with pytest.raises(DatasetError, match="qrels file not found"):
        load_beir(tmp_path, split="dev")
