"""The one value model of a maths answer: what parsing produces (``parse_quantity``, ``parse_expression``,
``parse_value``: immutable trees, or None outside the grammar) and verification only reads (Math-Verify's split).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class Quantity:
    """A number: exact ``value`` (None for infinity, whose sign is ``infinite``), canonical ``unit`` (``""`` for none).
    The decimal rule of every comparison: a decimal is the rational it writes (``0.333333`` is not ``1/3``,
    ``1.41421356`` is not ``\\sqrt{2}``), as in the paper's reward (sympy); Math-Verify's 6-place rounding credits them."""

    value: Fraction | None
    unit: str = ""
    percent: bool = False
    decimal: bool = False
    infinite: int = 0

    @property
    def plain(self) -> bool:
        return self.value is not None and not self.unit and not self.percent


@dataclass(frozen=True)
class Op:
    """An operation of the expression grammar (:mod:`~vlm_capcurriculum.rewards.expr`); numerals are :class:`Quantity`
    leaves; ``root`` args are (index, radicand), ``log`` (base, argument), ``rel`` (operator, left, right)."""

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
