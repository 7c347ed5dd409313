"""The project's rewards as TRL reward functions: weights reproduce the paper's overall reward."""

from __future__ import annotations

import pytest

from vlm_capcurriculum.integrations.trl.rewards import (
    accuracy_reward,
    completion_text,
    format_reward,
    reward_weights,
)
from vlm_capcurriculum.rewards import score
from vlm_capcurriculum.schema import SampleRecord

RESPONSES = [
    "<think>2 + 2</think> \\boxed{4}",  # right, formatted
    "<think>hmm</think> \\boxed{5}",  # wrong, formatted
    "\\boxed{4}",  # right, unformatted (no reasoning block); "The answer is 4" has no box: accuracy 0
    "",  # nothing
]


def conversational(texts: list[str]) -> list[list[dict]]:
    return [[{"role": "assistant", "content": text}] for text in texts]


def test_weights_reproduce_the_paper_overall_reward() -> None:
    completions = conversational(RESPONSES)
    truths = ["4"] * 4
    accuracy = accuracy_reward(completions, truths)
    formats = format_reward(completions)
    assert accuracy == [1.0, 0.0, 1.0, 0.0] and formats == [1.0, 1.0, 0.0, 0.0]
    for weight in (0.1, 0.5):
        a, f = reward_weights(weight)
        combined = [a * x + f * y for x, y in zip(accuracy, formats, strict=True)]
        expected = [score(text, "4", format_weight=weight)["overall"] for text in RESPONSES]
        assert combined == pytest.approx(expected)


def test_answer_type_and_capability_come_from_the_columns() -> None:
    # A plain "12" is a math answer; the answer_type column makes it a number (so "12.0" counts).
    completions = conversational(["<think></think> \\boxed{12.0}"])
    assert accuracy_reward(completions, ["12"], answer_type=["number"]) == [1.0]
    assert accuracy_reward(conversational(["\\boxed{C}"]), ["C"], answer_type=["choice"]) == [1.0]
    # a malformed ground truth scores 0 and never raises
    assert accuracy_reward(conversational(["\\boxed{1}"]), ['{"answer": "1", "type": "bogus"}']) == [0.0]


def test_ground_truth_column_round_trips_a_record() -> None:
    record = SampleRecord(
        id="p1", capability="perception", problem="<image>Colour?", answer="B", answer_type="choice",
        images=("a.png",), choices={"A": "red", "B": "blue"},
    )  # fmt: skip
    completions = conversational(["<think></think> \\boxed{blue}", "<think></think> \\boxed{B}", "\\boxed{A}"])
    truth = [record.ground_truth()] * 3
    assert accuracy_reward(completions, truth, answer_type=["choice"] * 3, capability=["perception"] * 3) == [1, 1, 0]


def test_per_capability_accuracy_is_logged() -> None:
    logged: dict[str, float] = {}
    accuracy_reward(
        conversational(["\\boxed{1}", "\\boxed{2}", "\\boxed{3}"]),
        ["1", "0", "3"],
        capability=["perception", "perception", "text_reasoning"],
        log_metric=logged.__setitem__,
    )
    assert logged == {"accuracy/perception": 0.5, "accuracy/text_reasoning": 1.0}


def test_plain_and_block_completions() -> None:
    assert completion_text("x") == "x"
    assert (
        completion_text(
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        )
        == "ab"
    )
    assert completion_text([]) == ""
    with pytest.raises(ValueError):
        reward_weights(1.5)
