from __future__ import annotations

from fractions import Fraction

import pytest

from vlm_capcurriculum.rewards.expr import Unsupported, compare, parse_expression


def same(a: str, b: str) -> bool | None:
    return compare(parse_expression(a), parse_expression(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2\\sqrt{3}", "\\sqrt{12}"),
        ("\\frac{9}{4}\\pi", "\\frac94 \\pi"),
        ("\\sqrt[3]{-8}", "-2"),
        ("x^2+2x+1", "(x+1)^2"),
        ("\\sin^2 x + \\cos^2 x", "1"),
        ("\\log_2 8", "3"),
        ("e^{2}", "e^2"),
        ("|x-1|", "|1-x|"),
        ("5!", "120"),
        ("x_1 + x_2", "x_2 + x_1"),
        ("y = 2x + 1", "2x - y + 1 = 0"),
        ("x \\geq 5", "5 \\le x"),
    ],
)
def test_equal(a: str, b: str) -> None:
    assert same(a, b) is True


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("\\sqrt{3}", "\\sqrt{12}"),
        ("x+1", "y+1"),
        ("x^2", "x^3"),
        ("x > 5", "x < 5"),
        ("x > 5", "x \\ge 5"),
        ("y = 2x", "x"),
    ],
)
def test_different(a: str, b: str) -> None:
    assert same(a, b) is False


@pytest.mark.parametrize(
    "text",
    ["xy", "2 cm", "\\sin 2x", "1/2x", "0 < x < 1", "\\int x dx", "x^2^3", "(" * 100 + "1" + ")" * 100],
)
def test_outside_the_grammar(text: str) -> None:
    with pytest.raises(Unsupported):
        parse_expression(text)


def test_huge_values_are_undecided_not_slow() -> None:
    assert same("2^{10^{10}}", "1") is None  # overflows at every point: the symbolic path (and its guard) decides
    assert same("1000000!", "1") is None


def test_constants_are_exact_and_decimals_are_the_rational_they_write() -> None:
    from vlm_capcurriculum.rewards.expr import compare, exact_value, parse_expression

    def same(a: str, b: str) -> bool | None:
        return compare(parse_expression(a), parse_expression(b))

    assert exact_value(parse_expression("2^{100}+1")) == 2**100 + 1
    assert exact_value(parse_expression("\\sqrt{\\frac{9}{4}}")) == Fraction(3, 2)
    assert exact_value(parse_expression("\\sqrt{2}")) is None
    assert exact_value(parse_expression("10^{100000}")) is None  # too many digits to write: float path decides
    assert same("5^{40}+1", "5^{40}") is False
    assert same("10^{-30}", "10^{-31}") is False
    assert same("\\sqrt{4}", "2.0") is True
    assert same("2.2360679", "\\sqrt{5}") is False  # a decimal approximation is not the exact value
    assert same("0.5", "\\cos\\frac{\\pi}{3}") is True  # a short decimal equal to float precision is that rational
    assert same("e^{i\\pi}", "-1") is True


def test_expressions_are_compared_at_negative_and_sign_changing_points() -> None:
    from vlm_capcurriculum.rewards.expr import compare, parse_expression

    def same(a: str, b: str) -> bool | None:
        return compare(parse_expression(a), parse_expression(b))

    assert same("|u|", "u") is False
    assert same("|u-2|", "2-u") is False
    assert same("\\sqrt{u^2}", "u") is False
    assert same("\\sqrt{u^2}", "|u|") is True
    assert same("\\frac{u}{|u|}", "1") is False
    assert same("\\ln(u^2)", "2\\ln(u)") is True  # equal wherever both are real


def test_one_value_model_from_numbers_to_whole_answers() -> None:
    """A numeral inside an expression is the same Quantity a bare number parses to, and a whole answer's tree holds
    the expression itself (no second representation to convert between)."""
    from vlm_capcurriculum.rewards.mathvalue import parse_value
    from vlm_capcurriculum.rewards.quantity import parse_quantity
    from vlm_capcurriculum.rewards.value import Op, Quantity, Seq

    half = Quantity(Fraction(5, 2), decimal=True)
    assert parse_quantity("2.5") == half
    assert parse_expression("2.5x") == Op("mul", (half, Op("var", ("x",))))
    assert parse_value("\\frac{\\pi}{3}") == parse_expression("\\frac{\\pi}{3}")
    assert parse_value("(2.5, \\sqrt{2})") == Seq("(", ")", (half, parse_expression("\\sqrt{2}")))


@pytest.mark.parametrize("depth", [10, 60])
def test_one_nesting_bound_for_every_parser(depth: int) -> None:
    from vlm_capcurriculum.rewards.bounds import MAX_NESTING
    from vlm_capcurriculum.rewards.mathvalue import parse_value
    from vlm_capcurriculum.rewards.symbolic import TooLarge, parse_latex

    text = "-(" * depth + "1" + ")" * depth
    if depth <= MAX_NESTING // 2:
        assert compare(parse_expression(text), parse_expression("1" if depth % 2 == 0 else "-1")) is True
        assert parse_value(text) is not None
        parse_latex(text)
    else:
        with pytest.raises(Unsupported):
            parse_expression(text)
        assert parse_value(text) is None
        with pytest.raises(TooLarge):
            parse_latex(text)


def test_value_nesting_bound_counts_braces_and_matrices() -> None:
    from vlm_capcurriculum.rewards.mathvalue import parse_value

    assert parse_value("\\{" * 60 + "1" + "\\}" * 60) is None
    assert parse_value("\\begin{pmatrix}" * 60 + "1" + "\\end{pmatrix}" * 60) is None
    assert parse_value("\\begin{pmatrix}" * 10 + "1" + "\\end{pmatrix}" * 10) is not None
