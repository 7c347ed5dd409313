from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlm_capcurriculum.schema.answer import AnswerSpec, AnswerSpecError, with_columns


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


def test_a_ground_truth_meant_as_json_is_never_read_as_maths() -> None:
    for text, kind in [
        ('{"x": 1}', "bad_spec"),  # an object without an answer
        ('{"answer": "2",}', "malformed_json"),  # a trailing comma
        ('{"answer": 2 "type": "number"}', "malformed_json"),  # a missing comma
    ]:
        with pytest.raises(AnswerSpecError) as raised:
            AnswerSpec.parse(text)
        assert raised.value.kind == kind
    assert AnswerSpec.parse("{1, 2}") == AnswerSpec("{1, 2}", "math")  # a LaTeX set stays maths


def test_non_string_ground_truths_are_the_answer_they_stand_for() -> None:
    assert AnswerSpec.parse(3) == AnswerSpec("3")
    assert AnswerSpec.parse(2.5) == AnswerSpec("2.5")
    assert AnswerSpec.parse([1, 2]) == AnswerSpec("1, 2")
    assert AnswerSpec.parse(True) == AnswerSpec("yes")
    assert AnswerSpec.parse({"answer": 7, "type": "number"}) == AnswerSpec("7", "number")
    for missing in (None, float("nan"), float("inf"), "", "  ", [], {"answer": None}):
        with pytest.raises(AnswerSpecError) as raised:
            AnswerSpec.parse(missing)
        assert raised.value.kind == "missing"


@given(
    answer=st.text(min_size=1, max_size=20).filter(str.strip),  # a blank answer is a missing ground truth
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


def test_options_in_either_case_with_number_texts() -> None:
    spec = AnswerSpec.parse({"answer": "b", "choices": {"a": "red", "b": 3, "c": None}})
    assert spec == AnswerSpec("b", "choice", {"A": "red", "B": "3"})
    many = AnswerSpec.parse({"answer": "Z", "choices": {chr(65 + i): str(i) for i in range(26)}})
    assert many.type == "choice" and len(many.choices) == 26


def test_dataset_columns_override_the_ground_truth_or_void_it() -> None:
    plain = AnswerSpec.parse("12")  # a plain "12" is a math answer; an answer_type column makes it a number
    assert with_columns(plain, answer_type="number", capability="text_reasoning") == AnswerSpec(
        "12", "number", capability="text_reasoning"
    )
    assert with_columns(plain, answer_type="", choices={}, capability=None) is plain  # empty columns keep the spec
    assert with_columns(None, answer_type="number") is None  # an unreadable ground truth stays unreadable
    letter = AnswerSpec.parse("B")
    assert with_columns(letter, choices={"A": "red", "B": "blue"}).choices == {"A": "red", "B": "blue"}
    # columns that contradict the ground truth: scored 0 (None), never a crash or a silent guess
    assert with_columns(letter, choices={"A": "red"}) is None
    assert with_columns(plain, answer_type="bogus") is None
