"""Units of measurement: one canonical name per unit, so ``cm`` and ``centimeters`` agree and ``weeks`` and ``days``
do not.

The rule the verifiers apply (see :func:`vlm_capcurriculum.rewards.quantity.quantities_equal`): when both sides
name a unit, the units must measure the same thing and the amounts must be equal after conversion (``28 days`` is
``4 weeks``, ``150 cm`` is ``1.5 m``; ``4 weeks`` is not ``4 days``); units without a fixed conversion (months,
years, currencies, unknown words) must be the same unit. When only one side names a unit, the numbers are compared
(``90^\\circ`` vs ``90``, ``125 miles`` vs ``125``), as a grader reading the question would. Generic units
("units", "square units") count as no unit.
"""

from __future__ import annotations

import re
from fractions import Fraction

from vlm_capcurriculum.rewards.fold import singular

_ALIASES: dict[str, tuple[str, ...]] = {
    "mm": ("millimeter", "millimetre"),
    "cm": ("centimeter", "centimetre"),
    "m": ("meter", "metre"),
    "km": ("kilometer", "kilometre"),
    "in": ("inch", "inches"),
    "ft": ("foot", "feet"),
    "yd": ("yard",),
    "mi": ("mile",),
    "s": ("sec", "second"),
    "min": ("minute",),
    "h": ("hr", "hour"),
    "day": (),
    "week": ("wk",),
    "month": ("mo",),
    "year": ("yr",),
    "mg": ("milligram",),
    "g": ("gram", "gm"),
    "kg": ("kilogram", "kilo"),
    "lb": ("lbs", "pound"),
    "oz": ("ounce",),
    "ml": ("milliliter", "millilitre"),
    "l": ("liter", "litre"),
    "gal": ("gallon",),
    "°": ("deg", "degree", "degrees", "°c", "°f"),
    "rad": ("radian",),
    "km/h": ("kph", "kmh", "kilometers per hour", "km per hour", "kilometer per hour"),
    "mi/h": ("mph", "miles per hour", "mile per hour"),
    "m/s": ("meters per second", "meter per second", "mps"),
    "$": ("dollar", "usd", "buck"),
    "cent": ("c", "¢"),
    "yuan": ("rmb", "cny"),
    "euro": ("eur",),
}
_CANONICAL: dict[str, str] = {}
for _name, _aliases in _ALIASES.items():
    _CANONICAL[_name] = _name
    for _alias in _aliases:
        _CANONICAL[_alias] = _name

#: Words that say "some unit" without naming one.
_GENERIC = frozenset(
    {"unit", "units", "square unit", "square units", "sq unit", "sq units", "cubic unit", "cubic units"}
)
#: Words a maths answer uses that are not units: a number followed by one of these is not a measurement.
_NOT_UNITS = frozenset(
    {"sin", "cos", "tan", "cot", "csc", "d", "log", "ln", "exp", "sqrt", "pi", "e", "i", "inf", "infinity", "and"}
    | {"or", "x", "y", "z", "n", "k", "t", "a", "b", "c", "p", "q", "r", "u", "v", "w", "i", "j"}
)
_UNIT_SHAPE = re.compile(
    r"(?:°\s*[CcFf]?|[A-Za-z]+\.?)(?:\s*\^\s*\{?\s*[23]\s*\}?)?"
    r"(?:\s*(?:/|\bper\b)\s*[A-Za-z]+(?:\s*\^\s*\{?\s*[23]\s*\}?)?)?"
    r"(?:\s+[A-Za-z]+(?:\s*\^\s*\{?\s*[23]\s*\}?)?){0,3}"
)
#: Exact conversion factors to one base unit per dimension (international definitions of inch, foot, pound...).
_FACTORS: dict[str, tuple[str, Fraction]] = {
    "mm": ("length", Fraction(1, 1000)),
    "cm": ("length", Fraction(1, 100)),
    "m": ("length", Fraction(1)),
    "km": ("length", Fraction(1000)),
    "in": ("length", Fraction("0.0254")),
    "ft": ("length", Fraction("0.3048")),
    "yd": ("length", Fraction("0.9144")),
    "mi": ("length", Fraction("1609.344")),
    "s": ("time", Fraction(1)),
    "min": ("time", Fraction(60)),
    "h": ("time", Fraction(3600)),
    "day": ("time", Fraction(86400)),
    "week": ("time", Fraction(604800)),
    "mg": ("mass", Fraction(1, 1000)),
    "g": ("mass", Fraction(1)),
    "kg": ("mass", Fraction(1000)),
    "lb": ("mass", Fraction("453.59237")),
    "oz": ("mass", Fraction("28.349523125")),
    "ml": ("volume", Fraction(1, 1000)),
    "l": ("volume", Fraction(1)),
    "$": ("usd", Fraction(1)),
    "cent": ("usd", Fraction(1, 100)),
}


def conversion(unit: str) -> tuple[str, Fraction] | None:
    """The dimension of a canonical unit and its factor to the dimension's base unit, or None when the unit has no
    fixed conversion. Handles powers (``cm^2``) and quotients (``km/h``)."""
    if "/" in unit:
        numerator, _, denominator = unit.partition("/")
        top, bottom = conversion(numerator), conversion(denominator)
        if top is None or bottom is None:
            return None
        return f"{top[0]}/{bottom[0]}", top[1] / bottom[1]
    base, _, power = unit.partition("^")
    known = _FACTORS.get(base)
    if known is None:
        return None
    exponent = int(power) if power.isdigit() else 1
    return f"{known[0]}^{exponent}", known[1] ** exponent


_POWER = re.compile(r"\s*\^\s*\{?\s*([23])\s*\}?")


def canonical_unit(text: str) -> str | None:
    """The canonical name of the unit ``text`` names, ``""`` for no or a generic unit, None when ``text`` is not a
    unit (then the answer is not a measurement and other rules decide)."""
    text = text.strip()
    if not text:
        return ""
    if not _UNIT_SHAPE.fullmatch(text):
        return None
    lowered = re.sub(r"\s+", " ", text.lower().replace(".", "")).strip()
    if lowered in _GENERIC:
        return ""
    power = ""
    match = _POWER.search(lowered)
    if match:
        power = "^" + match.group(1)
        lowered = _POWER.sub("", lowered).strip()
    if lowered not in _CANONICAL and re.split(r"[ /]", lowered)[0] in _NOT_UNITS:
        return None
    for word, exponent in (("square ", "^2"), ("sq ", "^2"), ("cubic ", "^3"), ("cu ", "^3")):
        if lowered.startswith(word):
            lowered, power = lowered[len(word) :], exponent
    for word, exponent in ((" squared", "^2"), (" cubed", "^3")):
        if lowered.endswith(word):
            lowered, power = lowered[: -len(word)], exponent
    if lowered in _GENERIC:
        return ""
    if "/" in lowered or " per " in lowered:
        key = lowered.replace(" ", "")
        if lowered in _CANONICAL:
            return _CANONICAL[lowered] + power
        if key in _CANONICAL:
            return _CANONICAL[key] + power
        parts = re.split(r"\s*/\s*|\s+per\s+", lowered, maxsplit=1)
        return "/".join(_canonical_word(part) for part in parts) + power
    return _canonical_word(lowered) + power


def _canonical_word(word: str) -> str:
    word = word.strip()
    if word in _CANONICAL:
        return _CANONICAL[word]
    one = singular(word)
    return _CANONICAL.get(one, one)
