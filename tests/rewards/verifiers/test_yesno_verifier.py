from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards import AnswerSpec, verify
from vlm_capcurriculum.rewards.verifiers.yesno import parse_yesno


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("Yes", True), ("yes.", True), ("YES", True), ("Yes, there is a dog.", True), ("True", True),
        ("\\text{Yes}", True), ("Correct", True), ("No", False), ("no, there is not", False), ("False", False),
        ("There is no cat in the image.", False), ("NO", False), ("Nope", False),
        ("Yes or no", None), ("yes/no", None), ("Not sure", None), ("maybe", None), ("", None),
        # contradictions and negations say neither; a determiner "no" after "Yes" is not an answer
        ("Yes. No.", None), ("No, yes", None), ("not yes", None), ("Yes, the answer is no.", None),
        ("False. True.", None), ("Yes, there are no clouds.", True), ("No, that is not correct.", False),
        # refusals say neither
        ("N/A", None), ("No idea", None), ("No way to tell.", None), ("I don't know", None),
    ],
)  # fmt: skip
def test_parse_yesno(answer: str, said: bool | None) -> None:
    assert parse_yesno(answer) is said


def test_verify_yesno() -> None:
    yes = AnswerSpec("yes", "yesno").to_ground_truth()
    assert verify("Yes, it is.", yes)
    assert not verify("No.", yes)
    assert verify("yes", '{"answer": true, "type": "yesno"}')
    assert not verify("yes", AnswerSpec("perhaps", "yesno"))  # a gold that is neither matches nothing
