from __future__ import annotations

from fractions import Fraction

import pytest

from vlm_capcurriculum.rewards import AnswerSpec, verify
from vlm_capcurriculum.rewards.verifiers.number import parse_number


def number(answer: str) -> str:
    return AnswerSpec(answer, "number").to_ground_truth()


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("3", 3), ("three", 3), ("Three", 3), ("3 apples", 3), ("3.0", 3), ("twelve", 12), ("twenty-one", 21),
        ("twenty one", 21), ("a dozen", 12), ("zero", 0), ("none", 0), ("1,200", 1200), ("a hundred", 100),
        ("three hundred", 300), ("There are three apples in the basket.", 3), ("I count 5 birds.", 5),
        ("There are 3 apples, so the answer is 3.", 3), ("There are no dogs in the picture.", 0),
    ],
)  # fmt: skip
def test_parse_number(answer: str, value: int) -> None:
    parsed = parse_number(answer)
    assert parsed is not None and parsed.value == Fraction(value)


@pytest.mark.parametrize(
    "answer", ["There are 3 apples and 2 oranges.", "some", "many birds", "", "no more than 3 birds and 2 cats"]
)
def test_no_single_number(answer: str) -> None:
    assert parse_number(answer) is None


@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("three", "3", True),
        ("3", "two", False),
        ("2", "two", True),
        ("4 weeks", "4 days", False),
        ("4 days", "4 days", True),
        ("4", "4 days", True),
        ("5 m", "5 cm", False),
        ("2.5", "5/2", True),
        ("\\frac{5}{2}", "2.5", True),
        ("\\frac{6}{2}", "3", True),
        ("2+1", "3", True),  # written as maths: the maths verifier decides
        ("3 or 4", "3", False),
        ("17", "7", False),
    ],
)
def test_verify_number(answer: str, gold: str, correct: bool) -> None:
    assert verify(answer, number(gold)) is correct
