"""The answerability model: the shipped weights load only when their hash matches, and the
probability moves the way the signals say."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.errors import ModelError
from qa.answerability import FEATURES, MODEL_PATH, AnswerabilityModel
from qa.followup import asks_for_source


def test_the_shipped_model_loads_and_names_only_known_signals() -> None:
    model = AnswerabilityModel.load()
    assert model.weights and set(model.weights) <= set(FEATURES)
    assert 0.0 < model.threshold < 1.0


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "answerability.json"
    tampered.write_text(MODEL_PATH.read_text().replace('"bias"', '"bias" ', 1))
    with pytest.raises(ModelError, match="sha256"):
        AnswerabilityModel.load(tampered)
    with pytest.raises(ModelError, match="cannot read"):
        AnswerabilityModel.load(tmp_path / "missing.json")


def test_evidence_that_covers_the_question_is_likelier_to_answer() -> None:
    model = AnswerabilityModel.load()
    weak = {"coverage": 0.2, "context_coverage": 0.3, "type_missing": 1.0, "concepts": 1.4}
    strong = {"coverage": 1.0, "context_coverage": 1.0, "type_missing": 0.0, "concepts": 1.4}
    assert model.probability(weak) < model.threshold < model.probability(strong)
    assert model.probability({**strong, "parts_missing": 1.0}) < model.probability(strong)


@pytest.mark.parametrize(
    ("question", "points_back"),
    [
        ("Who reported that?", True),
        ("Which outlet said so?", True),
        ("And who wrote it first?", True),
        ("Who reported the mortar attack?", False),
        ("Who says he was there?", False),
        ("Who won the 2019 Tour de France?", False),
    ],
)
def test_only_questions_pointing_back_ask_for_the_source(question: str, points_back: bool) -> None:
    assert asks_for_source(question) is points_back
