from __future__ import annotations

import json

import pytest
from testkit import qwen

from vlm_capcurriculum.rewards import (
    AnswerSpec,
    score,
    score_batch,
    scoring,
    verify,
    verify_batch,
)


def test_paper_weights() -> None:
    right = score(qwen("\\boxed{3}"), "3")
    assert right == {"overall": 1.0, "accuracy": 1.0, "format": 1.0}
    unformatted = score("The answer is 3.", "3")  # the paper's reward: no box, no accuracy
    assert unformatted == {"overall": 0.0, "accuracy": 0.0, "format": 0.0}
    lenient = score("The answer is 3.", "3", extraction="lenient")
    assert lenient == {"overall": pytest.approx(0.9), "accuracy": 1.0, "format": 0.0}
    wrong = score(qwen("\\boxed{4}"), "3")
    assert wrong == {"overall": pytest.approx(0.1), "accuracy": 0.0, "format": 1.0}
    assert score(qwen("\\boxed{3}"), "3", format_weight=0.5)["overall"] == 1.0
    assert score(qwen("\\boxed{4}"), "3", format_weight=0.0)["overall"] == 0.0


def test_ground_truth_encodings() -> None:
    choices = {"A": "red", "B": "blue"}
    assert score(qwen("\\boxed{blue}"), json.dumps({"answer": "B", "choices": choices}))["accuracy"] == 1.0
    assert score(qwen("\\boxed{blue}"), {"answer": "B", "choices": choices})["accuracy"] == 1.0
    assert score(qwen("\\boxed{blue}"), AnswerSpec("B", "choice", choices))["accuracy"] == 1.0
    assert score(qwen("\\boxed{B}"), "B")["accuracy"] == 1.0  # the paper's released datasets: a bare letter


def test_breakdown_keys_name_type_and_capability() -> None:
    spec = AnswerSpec("3", "number", capability="perception")
    result = score(qwen("\\boxed{three}"), spec, breakdown=True)
    assert result == {
        "overall": 1.0,
        "accuracy": 1.0,
        "format": 1.0,
        "accuracy_number": 1.0,
        "accuracy_perception": 1.0,
    }
    clash = score(qwen("\\boxed{3}"), AnswerSpec("3", "math", capability="text"), breakdown=True)
    assert clash["accuracy_capability_text"] == 1.0 and clash["accuracy_math"] == 1.0


def test_batch_matches_single_and_deduplicates() -> None:
    responses = [qwen("\\boxed{2\\sqrt{3}}"), qwen("\\boxed{\\sqrt{12}}"), qwen("\\boxed{4}"), "junk"] * 5
    golds = ["\\sqrt{12}"] * len(responses)
    batch = score_batch(responses, golds)
    assert batch == [score(response, gold) for response, gold in zip(responses, golds, strict=True)]
    assert [item["accuracy"] for item in batch[:4]] == [1.0, 1.0, 0.0, 0.0]


def test_invalid_ground_truth_scores_zero_and_is_counted(stats_delta, caplog, monkeypatch) -> None:
    monkeypatch.setattr(scoring, "_warned_kinds", set())  # as in a fresh process
    result = score(qwen("\\boxed{A}"), '{"answer": "E", "choices": {"A": "x"}}')
    assert result == {"overall": pytest.approx(0.1), "accuracy": 0.0, "format": 1.0}
    assert stats_delta()["invalid_ground_truth"] == 1
    assert stats_delta()["invalid_ground_truth_bad_spec"] == 1
    assert "invalid ground truth" in caplog.text
    caplog.clear()
    score(qwen("\\boxed{A}"), '{"answer": "F", "choices": {"A": "x"}}')  # the same kind again: counted, not warned
    assert stats_delta()["invalid_ground_truth"] == 2
    assert "invalid ground truth" not in caplog.text


def test_oversize_response_scores_zero_and_is_counted(stats_delta) -> None:
    assert score("x" * 200_000 + "\\boxed{1}", "1")["accuracy"] == 0.0
    assert stats_delta()["oversize"] == 1


def test_non_string_response_scores_zero() -> None:
    assert score(None, "1") == {"overall": 0.0, "accuracy": 0.0, "format": 0.0}  # type: ignore[arg-type]


def test_programming_errors_raise() -> None:
    with pytest.raises(ValueError, match="2 responses but 1"):
        score_batch(["a", "b"], ["1"])
    with pytest.raises(ValueError, match="format_weight"):
        score("a", "1", format_weight=1.5)


def test_the_last_box_is_the_answer_for_every_type() -> None:
    # the paper's rule: a later box is a correction ("\\boxed{C} ... on reflection \\boxed{B}" answers B)
    assert score(qwen("\\boxed{C} ... on reflection \\boxed{B}"), "B")["accuracy"] == 1.0
    assert score(qwen("\\boxed{B} ... on reflection \\boxed{C}"), "B")["accuracy"] == 0.0
    yes = AnswerSpec("yes", "yesno")
    assert score(qwen("\\boxed{No}\\boxed{Yes}"), yes)["accuracy"] == 1.0
    assert score(qwen("\\boxed{Yes}\\boxed{No}"), yes)["accuracy"] == 0.0
    # maths: a multi-part answer boxed part by part is also read as the list of its parts
    assert score(qwen("\\boxed{1} and \\boxed{2} and \\boxed{3}"), "{1,2,3}")["accuracy"] == 1.0
    assert score(qwen("\\boxed{(2, 2)} \\quad \\text{and} \\quad \\boxed{(6, 2)}"), "(2, 2), (6, 2)")["accuracy"] == 1.0
    assert score(qwen("\\boxed{3} ... on reflection \\boxed{5}"), "5")["accuracy"] == 1.0
    assert score(qwen("\\boxed{5} ... on reflection \\boxed{3}"), "5")["accuracy"] == 0.0
    assert score(qwen(" ".join(f"\\boxed{{{i}}}" for i in range(10))), "{1,2}")["accuracy"] == 0.0


def test_verify_grades_bare_answers() -> None:
    assert verify("B", "B")
    assert verify("\\boxed{\\frac{1}{2}}", "0.5")  # a box in a bare answer is unwrapped
    assert verify_batch(["3", "4", "(b)"], ["3", "3", "B"]) == [True, False, True]
    assert score(qwen("\\boxed{7}"), "7")["accuracy"] == 1.0
    assert score("<think>\\boxed{7}", "7")["accuracy"] == 0.0
    with pytest.raises(ValueError):
        verify_batch(["1"], [])
