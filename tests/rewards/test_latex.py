from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards.latex import clean, strip_outer_braces


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\tfrac12", "\\frac12"),
        ("\\cfrac{1}{3}", "\\frac{1}{3}"),
        ("\\left( 1, 2 \\right)", "( 1, 2 )"),
        ("\\left[\\frac{1}{2}\\right.", "[\\frac{1}{2}"),
        ("90^\\circ", "90 °"),
        ("90^{\\circ}", "90 °"),
        ("90°", "90 °"),
        ("50\\%", "50%"),
        ("\\$1,000.99", "1,000.99"),
        ("14{,}916", "14916"),
        ("14 {, }916", "14916"),
        ("11,\\! 111,\\! 100", "11111100"),
        ("1\\,000", "1 000"),
        ("\\text{odd}", "odd"),
        ("12\\text{ and }13", "12 and 13"),
        ("\\textbf{\\text{B}}", "B"),
        ("5\\mbox{ cm}^2", "5 cm ^2"),
        ("{5}", "5"),
        ("{1, 2}", "{1, 2}"),  # braces around a list are a set, kept
        ("3.", "3"),
        ("\\boxed{7}", "7"),
        ("−3", "-3"),
        ("1 \\\\ 2", "1 \\\\ 2"),  # a matrix row break is not a spacing command
        ("\\displaystyle\\frac{1}{2}", "\\frac{1}{2}"),
    ],
)
def test_clean(text: str, cleaned: str) -> None:
    assert clean(text) == cleaned
    assert clean(cleaned) == cleaned  # idempotent


def test_strip_outer_braces_only_when_enclosing() -> None:
    assert strip_outer_braces("{a}{b}") == "{a}{b}"
    assert strip_outer_braces("{{x}}") == "x"
