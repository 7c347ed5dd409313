from __future__ import annotations

from fractions import Fraction

import pytest

from vlm_capcurriculum.rewards.latex import clean
from vlm_capcurriculum.rewards.quantity import Quantity, parse_quantity, quantities_equal
from vlm_capcurriculum.rewards.units import canonical_unit, conversion


@pytest.mark.parametrize(
    ("text", "value", "unit", "percent"),
    [
        ("7,425,000", 7425000, "", False),
        ("1 000", 1000, "", False),
        (".4", Fraction(2, 5), "", False),
        ("-\\frac{10}{9}", Fraction(-10, 9), "", False),
        ("\\frac3{3}", 1, "", False),
        ("2\\frac{1}{2}", Fraction(5, 2), "", False),  # mixed number
        ("2 1/2", Fraction(5, 2), "", False),
        ("0.\\overline{3}", Fraction(1, 3), "", False),
        ("0.1\\overline{6}", Fraction(1, 6), "", False),
        ("1.5 \\times 10^{3}", 1500, "", False),
        ("2^{10}", 1024, "", False),
        ("3 million", 3_000_000, "", False),
        ("twenty-one", 21, "", False),
        ("28 percent", 28, "", True),
        ("90 °", 90, "°", False),
        ("15 cm ^2", 15, "cm^2", False),
        ("125 miles", 125, "mi", False),
        ("4 weeks", 4, "week", False),
        ("3 apples", 3, "apple", False),
        ("7 units", 7, "", False),  # a generic unit is no unit
    ],
)
def test_parse_quantity(text: str, value, unit: str, percent: bool) -> None:
    quantity = parse_quantity(clean(text))
    assert quantity is not None
    assert (quantity.value, quantity.unit, quantity.percent) == (Fraction(value), unit, percent)


@pytest.mark.parametrize("text", ["3x", "2 sin", "9**9", "1e99999", "9" * 500, "x", "1, 2", "12 and 13", ""])
def test_not_a_quantity(text: str) -> None:
    assert parse_quantity(text) is None


def test_bounded_numerals_and_exponents() -> None:
    assert parse_quantity("1e400") is not None
    assert parse_quantity("1e401") is None
    assert parse_quantity("2^{10000}") is None


def test_units_convert_within_a_dimension() -> None:
    assert conversion("week") == ("time^1", Fraction(604800))
    assert conversion("km/h") == ("length^1/time^1", Fraction(1000, 3600))
    assert conversion("month") is None  # no fixed length
    assert canonical_unit("square centimeters") == "cm^2"
    assert canonical_unit("x") is None  # a variable, not a unit
    assert canonical_unit("mph") == "mi/h"
    assert canonical_unit("kilometers per hour") == canonical_unit("km / h") == "km/h"  # an alias, and by its parts
    assert canonical_unit("meters per second") == "m/s"
    assert canonical_unit("square units") == canonical_unit("units") == ""  # generic


def q(value, unit: str = "", percent: bool = False, decimal: bool = False) -> Quantity:
    return Quantity(Fraction(value), unit, percent, decimal)


def test_quantities_equal_rules() -> None:
    assert not quantities_equal(q(4, "week"), q(4, "day"))
    assert quantities_equal(q(28, "day"), q(4, "week"))
    assert quantities_equal(q(4), q(4, "day"))
    assert not quantities_equal(q(4, "month"), q(4, "week"))
    assert quantities_equal(q(28, percent=True), q(28))
    assert quantities_equal(q(28, percent=True), q(Fraction(28, 100)))
    # a decimal is the rational it writes: no rounding, at any magnitude
    assert quantities_equal(q(Fraction("0.5"), decimal=True), q(Fraction(1, 2)))
    assert not quantities_equal(q(Fraction("0.333333"), decimal=True), q(Fraction(1, 3)))
    assert not quantities_equal(q(Fraction("0.333"), decimal=True), q(Fraction(1, 3)))
    assert not quantities_equal(q(Fraction("1.0000001"), decimal=True), q(Fraction(1)))
    assert not quantities_equal(q(Fraction("0.0000001"), decimal=True), q(Fraction(0)))
