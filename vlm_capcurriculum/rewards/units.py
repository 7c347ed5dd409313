"""Units of measurement: one canonical name per unit, so ``cm`` and ``centimeters`` agree and ``weeks`` and ``days``
do not. When both sides name a unit, they must measure the same thing and be equal after conversion (``28 days`` is
``4 weeks``); units without a fixed conversion (months, currencies, unknown words) must be the same. When one side
names a unit, the numbers are compared (``90^\\circ`` vs ``90``), as a grader reading the question would.
"""

from __future__ import annotations

import re
from fractions import Fraction

from vlm_capcurriculum.rewards.fold import singular

#: Canonical name: (dimension, exact factor to the dimension's base unit, aliases). Units without a fixed conversion
#: (months, years, gallons, angles, currencies but the dollar) have no dimension: only the same unit equals them.
#: Factors are the international definitions (inch, foot, pound...).
_UNITS: dict[str, tuple[str | None, str | None, str]] = {
    "mm": ("length", "1/1000", "millimeter|millimetre"),
    "cm": ("length", "1/100", "centimeter|centimetre"),
    "m": ("length", "1", "meter|metre"),
    "km": ("length", "1000", "kilometer|kilometre"),
    "in": ("length", "0.0254", "inch|inches"),
    "ft": ("length", "0.3048", "foot|feet"),
    "yd": ("length", "0.9144", "yard"),
    "mi": ("length", "1609.344", "mile"),
    "s": ("time", "1", "sec|second"),
    "min": ("time", "60", "minute"),
    "h": ("time", "3600", "hr|hour"),
    "day": ("time", "86400", ""),
    "week": ("time", "604800", "wk"),
    "month": (None, None, "mo"),
    "year": (None, None, "yr"),
    "mg": ("mass", "1/1000", "milligram"),
    "g": ("mass", "1", "gram|gm"),
    "kg": ("mass", "1000", "kilogram|kilo"),
    "lb": ("mass", "453.59237", "lbs|pound"),
    "oz": ("mass", "28.349523125", "ounce"),
    "ml": ("volume", "1/1000", "milliliter|millilitre"),
    "l": ("volume", "1", "liter|litre"),
    "gal": (None, None, "gallon"),
    "°": (None, None, "deg|degree|degrees|°c|°f"),
    "rad": (None, None, "radian"),
    "km/h": (None, None, "kph|kmh|kilometers per hour|km per hour|kilometer per hour"),
    "mi/h": (None, None, "mph|miles per hour|mile per hour"),
    "m/s": (None, None, "meters per second|meter per second|mps"),
    "$": ("usd", "1", "dollar|usd|buck"),
    "cent": ("usd", "1/100", "c|¢"),
    "yuan": (None, None, "rmb|cny"),
    "euro": (None, None, "eur"),
}
_CANONICAL = {alias: name for name, (_, _, aliases) in _UNITS.items() for alias in (name, *aliases.split("|")) if alias}
_FACTORS = {
    name: (dimension, Fraction(factor)) for name, (dimension, factor, _) in _UNITS.items() if dimension and factor
}
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
