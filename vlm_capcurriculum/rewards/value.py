"""The one value model of a maths answer: what parsing produces and verification consumes (Math-Verify's split).

Parsing (:func:`vlm_capcurriculum.rewards.quantity.parse_quantity` for a number,
:func:`vlm_capcurriculum.rewards.expr.parse_expression` for an expression,
:func:`vlm_capcurriculum.rewards.mathvalue.parse_value` for a whole answer) builds these immutable trees, or None
when a part is outside the grammar; verification (:func:`~vlm_capcurriculum.rewards.quantity.quantities_equal`,
:func:`~vlm_capcurriculum.rewards.expr.compare`, :func:`~vlm_capcurriculum.rewards.mathvalue.values_equal`) only
reads them. A numeral inside an expression is a :class:`Quantity` like any other number.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Quantity:
    """A number. ``value`` is exact (None for infinity, whose sign is ``infinite``); ``unit`` is canonical (``""``
    for none); ``percent`` records a percent sign, ``decimal`` a decimal point. The decimal rule of every comparison
    here: a decimal is the rational it writes (``0.5`` is ``1/2``; ``0.333333`` is not ``1/3``, ``1.0000001`` is
    not ``1``, ``1.41421356`` is not ``\\sqrt{2}``), as in the paper's reward (sympy); Math-Verify's default 6-place
    rounding would credit them."""

    value: Fraction | None
    unit: str = ""
    percent: bool = False
    decimal: bool = False
    infinite: int = 0

    @property
    def plain(self) -> bool:
        """A finite number without unit or percent: a numeral an expression can compute with."""
        return self.value is not None and not self.unit and not self.percent


@dataclass(frozen=True)
class Op:
    """An operation of the expression grammar. ``kind``: ``var`` (args: name), ``const`` (``pi``, ``e``, ``i``),
    ``neg``, ``add``, ``sub``, ``mul``, ``div``, ``pow``, ``root`` (index, radicand), ``fact``, ``abs``, ``fn`` (name,
    argument), ``log`` (base, argument), ``rel`` (operator, left, right); numerals are :class:`Quantity` leaves."""

    kind: str
    args: tuple


Node = Op | Quantity


@dataclass(frozen=True)
class Items:
    """An unordered collection; ``labels`` holds each element's label or None."""

    items: tuple[Value, ...]
    labels: tuple[str | None, ...]


@dataclass(frozen=True)
class Seq:
    """A tuple, interval or ratio: ordered elements between brackets (``:`` and ``:`` for a ratio ``3:4``)."""

    left: str
    right: str
    items: tuple[Value, ...]


@dataclass(frozen=True)
class Union:
    parts: tuple[Value, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True)
class Words:
    """A text answer ("odd", "Evelyn", "no solution"), compared case-folded."""

    text: str


Value = Quantity | Op | Items | Seq | Union | Matrix | Words


def is_relation(value: object) -> bool:
    return isinstance(value, Op) and value.kind == "rel"
