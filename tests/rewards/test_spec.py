from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlm_capcurriculum.rewards.spec import AnswerSpec, AnswerSpecError


@pytest.mark.parametrize(
    ("ground_truth", "expected"),
    [
        ("B", AnswerSpec("B", "choice")),
        (" J\n", AnswerSpec("J", "choice")),  # surrounding whitespace in released files does not change the type
        ("K", AnswerSpec("K", "math")),
        ("b", AnswerSpec("b", "math")),
        ("\\frac{1}{2}", AnswerSpec("\\frac{1}{2}", "math")),
        ("{1, 2}", AnswerSpec("{1, 2}", "math")),  # a LaTeX set, not a JSON object
        ('{"answer": 3, "type": "number"}', AnswerSpec("3", "number")),
        ('{"answer": true, "type": "yesno"}', AnswerSpec("yes", "yesno")),
        ('{"answer": "B", "choices": {"A": "red", "B": "blue"}}', AnswerSpec("B", "choice", {"A": "red", "B": "blue"})),
    ],
)
def test_parse(ground_truth: str, expected: AnswerSpec) -> None:
    assert AnswerSpec.parse(ground_truth) == expected


@pytest.mark.parametrize(
    "ground_truth",
    [
        '{"answer": "x", "type": "essay"}',
        '{"answer": "E", "choices": {"A": "a", "B": "b"}}',
        '{"answer": "A", "choices": ["a", "b"]}',
        '{"answer": "A", "kind": "choice"}',
        '{"answer": "A", "choices": {"AA": "a"}}',
    ],
)
def test_malformed_objects_raise(ground_truth: str) -> None:
    with pytest.raises(AnswerSpecError):
        AnswerSpec.parse(ground_truth)


def test_json_without_answer_key_is_a_plain_math_answer() -> None:
    assert AnswerSpec.parse('{"x": 1}') == AnswerSpec('{"x": 1}', "math")


@given(
    answer=st.text(min_size=1, max_size=20),
    answer_type=st.sampled_from(["math", "number", "yesno", "text"]),
)
def test_round_trip(answer: str, answer_type: str) -> None:
    spec = AnswerSpec(answer, answer_type)  # type: ignore[arg-type]
    assert AnswerSpec.parse(spec.to_ground_truth()) == spec


def test_round_trip_choice_with_options() -> None:
    spec = AnswerSpec("C", "choice", {"A": "a cat", "B": "a dog", "C": "a bird", "D": "a fish"})
    encoded = spec.to_ground_truth()
    assert json.loads(encoded)["choices"]["C"] == "a bird"
    assert AnswerSpec.parse(encoded) == spec
    assert AnswerSpec("C", "choice").to_ground_truth() == "C"
    tagged = AnswerSpec("7", "number", capability="perception")
    assert AnswerSpec.parse(tagged.to_ground_truth()) == tagged
    assert AnswerSpec("42", "math").to_ground_truth() == "42"
