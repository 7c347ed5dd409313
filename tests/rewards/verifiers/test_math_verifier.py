"""The maths verifier: exact rules in-process, symbolic comparison for the rest (through ``verify``)."""

from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards import verify
from vlm_capcurriculum.rewards.verifiers.math import verify_math_exact

EQUIVALENT = [
    # numbers
    ("-5", "-5"),
    ("7,425,000", "7425000"),
    ("1 000", "1000"),
    ("1000.0", "1000"),
    (".4", "0.4"),
    ("1,000.99", "1000.99"),
    ("004", "4"),
    # scientific notation
    ("1.5e3", "1500"),
    ("1.5 \\times 10^{3}", "1500"),
    ("1.5\\cdot10^3", "1500"),
    ("2 \\times 10^{-3}", "0.002"),
    # fractions and LaTeX variants
    ("\\frac{10}{9}", "10/9"),
    ("-\\frac{10}{9}", "-10/9"),
    ("\\frac{-10}{9}", "-\\frac{10}{9}"),
    ("\\frac13", "1/3"),
    ("\\dfrac{1}{3}", "1/3"),
    ("\\tfrac{1}{3}", "\\frac{1}{3}"),
    ("\\cfrac{1}{3}", "1/3"),
    ("\\left( \\frac{1}{3} \\right)", "1/3"),
    ("0.75", "\\frac{3}{4}"),
    # percent: one side only compares either way; both sides compare the numbers
    ("28\\%", "28"),
    ("28 percent", "28\\%"),
    ("28 pct", "28\\%"),
    ("28 %", "28\\%"),
    ("25\\%", "0.25"),
    ("50\\%", "\\frac{1}{2}"),
    # currency and thousands separators
    ("\\$1,000.99", "1000.99"),
    ("1,000.99\\$", "1000.99"),
    ("14{,}916", "14916"),
    ("11,\\! 111,\\! 111,\\! 100", "11111111100"),
    ("1,250 dollars", "\\$1250"),
    # units: one side only compares the number; both sides must measure the same amount
    ("\\frac{1}{3} \\text{meters}", "1/3"),
    ("125\\textnormal{ miles}", "125 miles"),
    ("15\\mbox{ cm}^2", "15"),
    ("4 \\text{ cm}", "4 centimeters"),
    ("28 \\text{ days}", "4 \\text{ weeks}"),
    ("150 cm", "1.5 \\text{ m}"),
    ("2 hours", "120 minutes"),
    # degrees
    ("90^\\circ", "90"),
    ("90^{\\circ}", "90^\\circ"),
    ("90 degrees", "90^\\circ"),
    ("\\frac{\\pi}{2}", "90^\\circ"),
    # labels: x = 3 is 3
    ("x = 3", "3"),
    ("3", "x=3"),
    ("k = \\frac{1}{3}", "1/3"),
    ("(p,q)=(3,2)", "(3, 2)"),
    ("(3,2)", "(p,q)=(3,2)"),
    ("x \\in [-2,7]", "[-2, 7]"),
    ("a_{37} = 19, \\quad a_3 = 2", "a_3 = 2, a_{37} = 19"),
    ("AB=4,CD=5", "4, 5"),
    # tuples, intervals, sets, unions
    ("(1,4.5)", "(1,\\frac{9}{2})"),
    ("[0,1)", "[0, 1)"),
    ("(-\\infty, 2]", "(-\\infty,2]"),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}"),
    ("{1,2,3}", "1, 2, 3"),
    ("1 and 2 and 3", "1,2,3"),
    ("6 \\text{ and } 8", "6,8"),
    ("(7,11),\\ (11,7)", "(11,7)or(7,11)"),
    ("-12;-11;-10", "\\{-12, -11, -10\\}"),
    ("(0;0;0),(0;-2;0)", "(0, 0, 0), (0, -2, 0)"),
    ("p=5,q=2;p=7,q=2", "(5,2),(7,2)"),
    ("[-1, -\\tfrac12) \\cup (-\\tfrac12, 0)", "[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0)"),
    ("(0, 1) \\cup (1, 2)", "(1, 2) \\cup (0, 1)"),
    ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),
    ("\\pm 2", "2, -2"),
    ("{-2021, 2021}", "\\pm 2021"),
    ("1 \\pm \\sqrt{19}", "\\{1 + \\sqrt{19}, 1 - \\sqrt{19}\\}"),
    ("7:32", "7:32"),
    # roots, pi, expressions
    ("\\sqrt3", "\\sqrt{3}"),
    ("\\sqrt 2+\\sqrt 5", "\\sqrt{2}+\\sqrt{5}"),
    ("2\\sqrt{3}", "\\sqrt{12}"),
    ("3\\sqrt{13}", "\\sqrt{117}"),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
    ("\\frac94\\pi", "\\frac{9}{4}\\pi"),
    ("6\\pi", "6\\pi"),
    ("\\sqrt[3]{-8}", "-2"),
    ("2^{10}", "1024"),
    ("10!", "3628800"),
    ("e^{2}", "e^2"),
    ("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"),
    ("x^2 + 2x + 1", "(x+1)^2"),
    ("\\sec^2(y)", "\\tan^2(y)+1"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("2 \\sin b \\cos a", "2\\cos a \\sin b"),
    # relations and equations
    ("y=-\\frac{1}{2}x+\\frac{3}{4}", "2x+4y-3=0"),
    ("x^2/16 + y^2/12 = 1/4", "x^2/4 + y^2/3 = 1"),
    ("-34x-45y+20z-100=0", "34x+45y-20z+100=0"),
    ("5 \\geq x", "x \\leq 5"),
    ("-x > -1", "x < 1"),
    ("x \\neq 3", "x != 3"),
    ("x \\in [-2,7]", "-2 \\le x \\le 7"),  # a set against a chain of inequalities
    ("(0,1)", "0<f(x)<1"),
    ("7 \\ge x \\ge -2", "[-2, 7]"),
    ("x > 5", "(5, \\infty)"),
    ("x \\le 5", "(-\\infty, 5]"),
    ("x<3 \\text{ or } x>5", "(-\\infty,3)\\cup(5,\\infty)"),
    ("x > \\sqrt{2}", "(\\sqrt{2}, \\infty)"),
    # words
    ("\\text{Evelyn}", "Evelyn"),
    ("Even", "\\text{even}"),
    ("\\text{(C)}", "\\text{C}"),
]

DIFFERENT = [
    ("4 weeks", "4 days"),  # the trap: units both given and different
    ("30 \\text{ days}", "4 \\text{ weeks}"),
    ("4\\text{ m}", "4\\text{ cm}"),
    ("x \\ge 5", "(5, \\infty)"),  # the bound's bracket counts
    ("-2 < x \\le 7", "[-2, 7]"),
    ("x < 3 \\text{ or } x > 5", "(-\\infty,3]\\cup(5,\\infty)"),
    ("x > 5", "5"),
    ("5", "6"),
    ("0.333", "\\frac{1}{3}"),  # not equal to 6 places
    ("\\frac{4}{3}", "\\frac{3}{4}"),
    ("-\\frac{1}{2}", "\\frac{1}{2}"),
    ("x = 4", "3"),
    ("(3, 2)", "(2,3)"),
    ("(0, 1)", "[0,1)"),
    ("[0,9)", "(0,9)"),
    ("1, 2", "\\{1, 2, 3\\}"),
    ("{1,3}", "(3,1)"),
    ("2021", "\\pm 2021"),
    ("\\sqrt{3}", "\\sqrt{12}"),
    ("3\\pi", "6\\pi"),
    ("18.85", "6\\pi"),
    ("\\frac{22}{7}", "\\pi"),
    ("4\\sqrt{2}", "4"),
    ("x^2 + 2x - 1", "(x+1)^2"),
    ("x > -1", "x < 1"),
    ("x \\geq 5", "x > 5"),
    ("0", "a +3z = 0"),
    ("1", "2x + z = 1"),
    ("1 + \\frac{1}{\\mathrm{e}}", "1 - \\frac{1}{\\mathrm{e}}"),
    ("a = 5, b = 2", "a = 2, b = 5"),
    ("n=1, 2, 3", "n=2, 3, 4"),
    ("D = (0, 1.5)", "D = (0, 1)"),
    ("1:00", "12:00"),
    ("21, 36, and 82", "19, 46, and 82"),
    ("\\text{E}", "d"),
    ("even", "\\text{odd}"),
    ("50^\\circ", "45^\\circ"),
    ("\\frac{\\pi}{4}", "60^\\circ"),
    ("3 \\text{ or } 4", "3"),
    ("1.25 \\times 10^{4}", "1250"),
    ("F_n = \\sum_{k=0}^{n-2} F_k F_{n-k-2}", "F_n = \\sum_{k=0}^{n-1} F_k F_{n-k-1}"),
]


@pytest.mark.parametrize(("answer", "gold"), EQUIVALENT)
def test_equivalent(answer: str, gold: str) -> None:
    assert verify(answer, gold)


@pytest.mark.parametrize(("answer", "gold"), DIFFERENT)
def test_different(answer: str, gold: str) -> None:
    assert not verify(answer, gold)


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("7,425,000", "7425000"),
        ("4 weeks", "4 days"),
        ("28\\%", "28"),
        ("x = 3", "3"),
        ("(1,4.5)", "(1,\\frac{9}{2})"),
        ("3\\sqrt{13}", "\\sqrt{117}"),
        ("\\frac{x}{7}+\\frac{2}{7}", "\\frac{x+2}{7}"),
        ("y=-\\frac{1}{2}x+\\frac{3}{4}", "2x+4y-3=0"),
        ("-x > -1", "x < 1"),
        ("-2 \\le x \\le 7", "x \\in [-2,7]"),  # inequality answers against intervals
        ("x > 5", "(5, \\infty)"),
    ],
)
def test_common_answers_never_need_the_symbolic_path(answer: str, gold: str) -> None:
    """Throughput: numbers, units, tuples, roots, pi and polynomials are settled in-process."""
    assert verify_math_exact(answer, gold) is not None


def test_undecided_goes_symbolic() -> None:
    assert verify_math_exact("x > y", "(5, \\infty)") is None  # a relation between two names
    assert verify_math_exact("\\sum_{k=1}^{n} k", "\\frac{n(n+1)}{2}") is None


def test_long_answers_are_only_compared_as_strings() -> None:
    long_answer = "1+" * 600 + "1"
    assert verify_math_exact(long_answer, long_answer) is True
    assert verify_math_exact(long_answer, "1201") is False
