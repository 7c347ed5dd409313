"""The symbolic path, called in-process here (in production it runs inside a guard worker)."""

from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards.symbolic import TooLarge, equivalent


@pytest.mark.parametrize(
    ("pred", "gold"),
    [("x \\in [-2,7]", "-2 \\le x \\le 7"), ("(0,1)", "0<f(x)<1"), ("\\sum_{k=1}^{n} k", "\\frac{n(n+1)}{2}")],
)
def test_equivalent(pred: str, gold: str) -> None:
    assert equivalent(pred, gold)


@pytest.mark.parametrize(
    "answer",
    [
        "9**9**9**9",
        "9^{9^{9^{9}}}",
        "10^{10^{10}}",
        "10^{-10^{10}}",
        "1000000!",
        "(10^{6})!",
        "\\binom{100000}{50000}",
        "\\prod_{k=1}^{10^{7}} k",
        "(" * 200 + "1" + ")" * 200,
        "9" * 3000,
    ],
)
def test_too_large_is_rejected_before_evaluation(answer: str) -> None:
    with pytest.raises(TooLarge):
        equivalent(answer, "\\frac{1}{2}")


def test_moderate_powers_are_fine() -> None:
    assert equivalent("2^{100}", "1267650600228229401496703205376")
    assert equivalent("10^{-\\frac{5 + \\sqrt{13}}{6}}", "10^{\\frac{-5-\\sqrt{13}}{6}}")


def test_code_is_text() -> None:
    assert not equivalent("__import__('os').getcwd()", "1")
