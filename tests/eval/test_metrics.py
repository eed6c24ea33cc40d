"""Metrics on small hand-made inputs whose right values are worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from eval import metrics as m
from eval.datasets import DatasetError, load_beir, load_qa_jsonl, load_sample_news, resolve_dataset, verify_evidence
from eval.errors import BaselineError
from eval.report import compare_with_baseline, invariant_failures, keep_worse, render_table
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


# qa-dev metrics (issue 9) -------------------------------------------------------------------------
def test_refusal_f1_is_the_harmonic_mean_of_precision_and_recall() -> None:
    assert m.refusal_f1(0.5, 1.0) == pytest.approx(2 * 0.5 / 1.5)  # 2PR/(P+R) = 1/1.5
    assert m.refusal_f1(0.0, 0.0) == 0.0
    assert m.refusal_f1(None, 1.0) is None


def test_counterfactual_outcomes_by_hand() -> None:
    true, false = ["Simona Halep"], ["Angelique Kerber"]
    both = "Simona Halep won [1]; another report says Angelique Kerber [2]."
    assert m.counterfactual_shown(both, refused=False, accepted=true, conflicting=false) == (True, False, True)
    only_false = "Angelique Kerber won Wimbledon in 2019 [1]."
    assert m.counterfactual_shown(only_false, refused=False, accepted=true, conflicting=false) == (False, True, False)
    only_true = "Halep, Simona Halep, won [1]."
    assert m.counterfactual_shown(only_true, refused=False, accepted=true, conflicting=false) == (True, False, False)
    # a refusal shows nothing, whatever its text says about the closest passages
    assert m.counterfactual_shown(only_false, refused=True, accepted=true, conflicting=false) == (False, False, False)
    # whole words only: "Kerberos" is not "Kerber"
    assert m.counterfactual_shown("Kerberos [1]", refused=False, accepted=true, conflicting=["Kerber"]) == (
        False,
        False,
        False,
    )


def test_two_gold_documents_cited() -> None:
    assert m.cites_two_gold_docs(["a", "b", "x"], {"a", "b"}) is True
    assert m.cites_two_gold_docs(["a", "x"], {"a", "b"}) is False  # one gold source only
    assert m.cites_two_gold_docs(["a", "a"], {"a", "b", "c"}) is False  # the same document twice
    assert m.cites_two_gold_docs(["a"], {"a"}) is None  # one gold document: does not apply


def test_factoid_questions_and_words_before_the_first_citation() -> None:
    assert m.is_factoid("Who acquired Instagram?") and m.is_factoid("how many days did it last?")
    assert m.is_factoid("Which team won?") and m.is_factoid("How much did it cost?")
    assert not m.is_factoid("How did the uprising end?") and not m.is_factoid("Does the article claim X?")
    assert not m.is_factoid("Whoever wins, what then?")  # "whoever" is not "who"
    assert not m.is_factoid("Super Bowl 2021 location")
    # "Facebook acquired Instagram in 2012" = 5 words, then [1]
    assert m.words_before_citation("Facebook acquired Instagram in 2012 [1], for $1 billion [2].") == 5
    assert m.words_before_citation("[1] Facebook.") == 0
    assert m.words_before_citation("No marker in these six words.") == 6


def test_squad_scores_and_answer_span_by_hand() -> None:
    assert m.exact_match("The Euphrates!", "euphrates")
    assert m.squad_scores("63 days", ["63", "63 days"]) == (1.0, 1.0)
    # "lasted 63 days" vs "63 days": common 2, precision 2/3, recall 1 -> F1 0.8; no exact match
    assert m.squad_scores("lasted 63 days", ["63 days"]) == pytest.approx((0.0, 0.8))
    assert m.squad_scores(None, ["63"]) == (0.0, 0.0)  # refused an answerable question
    assert m.squad_scores(None, []) == (1.0, 1.0)  # refused an unanswerable one: right
    assert m.squad_scores("anything", []) == (0.0, 0.0)
    text = "The uprising lasted 63 days."
    assert m.answer_span_valid(text, 20, 27, "63 days")
    assert not m.answer_span_valid(text, 20, 26, "63 days")
    assert not m.answer_span_valid(None, 0, 1, "T") and not m.answer_span_valid(text, None, 3, "The")
    assert not m.answer_span_valid(text, 20, 99, "63 days")


def test_summary_of_the_qa_dev_metrics_by_hand() -> None:
    results = [
        # RGB-style: one shows both, one only the false answer, one refused
        _result(id="r1", kind="conflict", answerable=True, true_shown=True, false_alone=False, both_shown=True),
        _result(id="r2", kind="conflict", answerable=True, true_shown=False, false_alone=True, both_shown=False),
        _result(id="r3", kind="conflict", answerable=True, refused=True, true_shown=False, false_alone=False,
                both_shown=False),
    ]
    s = summarize(results, k=10)
    assert s["true_shown"] == pytest.approx(1 / 3) and s["false_alone"] == pytest.approx(1 / 3)
    assert s["both_shown"] == pytest.approx(1 / 3)
    assert s["refusal_precision"] == 0.0 and s["refusal_f1"] is None  # no unanswerable case: recall undefined
    results = [
        _result(id="a", answerable=True, factoid=True, words_before_citation=4, squad_em=1.0, squad_f1=1.0,
                short_answer="63 days", answer_span_valid=True, gold_docs_cited=True),
        _result(id="b", answerable=True, factoid=True, words_before_citation=20, squad_em=0.0, squad_f1=0.5,
                gold_docs_cited=False),
        _result(id="c", answerable=True, factoid=True, words_before_citation=9, squad_em=0.0, squad_f1=0.0,
                short_answer="x", answer_span_valid=False),
        _result(id="d", kind="unanswerable", answerable=False, refused=True, squad_em=1.0, squad_f1=1.0),
        _result(id="e", kind="unanswerable", answerable=False, squad_em=0.0, squad_f1=0.0),
    ]
    s = summarize(results, k=10)
    assert s["words_before_citation"] == 9.0  # median of 4, 9, 20
    assert s["short_em"] == pytest.approx(1 / 3) and s["short_f1"] == pytest.approx(1.5 / 3)
    assert s["noans_f1"] == 0.5  # d refused (1), e answered (0)
    assert s["squad_f1"] == pytest.approx(2.5 / 5) and s["squad_em"] == pytest.approx(2 / 5)
    assert s["answer_span_valid"] == 0.5 and s["answer_phrases"] == 2
    assert s["gold_docs_cited"] == 0.5
    # refusal: d right; e answered an unanswerable case -> precision 1, recall 1/2, F1 2/3
    assert s["refusal_f1"] == pytest.approx(2 / 3)
    assert s["true_shown"] is None  # no case with conflicting answers


def test_gate_on_lower_is_better_metrics_and_on_answer_spans() -> None:
    baseline = _report(false_alone=0.02, words_before_citation=10.0)
    assert compare_with_baseline(_report(false_alone=0.03, words_before_citation=11.0), baseline) == []
    worse = compare_with_baseline(_report(false_alone=0.10, words_before_citation=12.0), baseline)
    assert {d.metric for d in worse} == {"false_alone", "words_before_citation"}
    assert [d.metric for d in invariant_failures(_report(answer_span_valid=0.9))] == ["answer_span_valid"]


def test_conflicting_answers_are_kept_and_validated(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Facebook acquired Instagram.")
    questions = tmp_path / "qa.jsonl"
    record = {"question": "Who acquired Instagram?", "answers": ["Facebook"], "conflicting_answers": ["Apple"]}
    questions.write_text(json.dumps(record) + "\n")
    assert load_qa_jsonl(questions, corpus=corpus).cases[0].conflicting == ("Apple",)
    questions.write_text(json.dumps({**record, "conflicting_answers": ["Apple", ""]}) + "\n")
    with pytest.raises(DatasetError, match=r"qa\.jsonl:1: 'conflicting_answers'"):
        load_qa_jsonl(questions, corpus=corpus)


def test_qa_dev_sets_resolve_by_short_name_and_a_missing_one_names_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "squad2"
    (folder / "corpus").mkdir(parents=True)
    (folder / "corpus" / "documents.jsonl").write_text(json.dumps({"id": "p1", "text": "Warsaw is on the Vistula."}))
    (folder / "questions.jsonl").write_text(json.dumps({"id": "q", "question": "Which river?", "answers": ["Vistula"]}))
    monkeypatch.setenv("CITEQA_QA_DEV", str(tmp_path))
    dataset = resolve_dataset("squad2")
    assert dataset.name == "squad2" and [d.id for d in dataset.documents] == ["p1"]
    with pytest.raises(DatasetError, match=str(tmp_path / "multihop-rag" / "questions.jsonl")):
        resolve_dataset("multihop-rag")


def test_keep_worse_baseline_holds_for_both_runs_it_was_saved_from() -> None:
    """One baseline for two CPUs: each gated metric keeps the worse figure, and both runs pass it."""
    a = _report(answer_accuracy=0.9, false_alone=0.0, latency_p50_ms=10.0)
    a["created_at"] = "machine-a"
    b = _report(answer_accuracy=0.8, false_alone=0.1, latency_p50_ms=99.0)
    b["by_kind"]["factual"]["answer_accuracy"] = 0.95
    merged = keep_worse(a, b)
    assert merged["overall"]["answer_accuracy"] == 0.8 and merged["overall"]["false_alone"] == 0.1
    assert merged["by_kind"]["factual"]["answer_accuracy"] == 0.9
    assert merged["overall"]["latency_p50_ms"] == 99.0  # not gated: this run's figure
    assert merged["merged_with"] == ["machine-a"] and "cases" not in merged
    assert b["by_kind"]["factual"]["answer_accuracy"] == 0.95  # the run's own report is untouched
    assert compare_with_baseline(a, merged, tolerance=0.0) == []
    assert compare_with_baseline(b, merged, tolerance=0.0) == []
    with pytest.raises(BaselineError):
        keep_worse({**a, "dataset": "other"}, b)
    only_one = keep_worse(_report(refusal_f1=0.5), _report())
    assert only_one["overall"]["refusal_f1"] is None  # one run lacks it: not gated, so both pass
    assert compare_with_baseline(_report(), only_one, tolerance=0.0) == []


def test_keep_worse_needs_a_baseline_file_to_save(capsys: pytest.CaptureFixture[str]) -> None:
    from api.cli import main

    assert main(["eval", "sample-news", "--keep-worse"]) != 0
    assert "--save-baseline" in capsys.readouterr().err
