from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards import AnswerSpec, verify


@pytest.mark.parametrize(
    ("answer", "gold", "correct"),
    [
        ("red", "red", True),
        ("Red.", "red", True),
        ("The car is red.", "red", True),
        ("red color", "red", True),
        ("blue", "red", False),
        ("not red", "red", False),
        ("The car is not red.", "red", False),
        ("grey", "gray", True),
        ("a cat", "cat", True),
        ("The cat", "cat", True),
        ("cats", "cat", True),
        ("dog", "cat", False),
        ("traffic lights", "traffic light", True),
        ("street light", "traffic light", False),
        ("white and red", "red and white", True),
        ("red", "red and white", False),
        ("2", "two", True),
        ("Yes.", "yes", True),
        ("\\text{Bicycle}", "bicycle", True),
        ("", "red", False),
    ],
)
def test_verify_text(answer: str, gold: str, correct: bool) -> None:
    assert verify(answer, AnswerSpec(gold, "text")) is correct
