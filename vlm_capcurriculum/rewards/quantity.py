"""Numbers with an optional percent sign and unit, parsed exactly and without evaluating anything.

:func:`parse_quantity` reads integers, decimals, scientific notation, integer powers, fractions, mixed and repeating
decimals, infinity, number and scale words ("twenty-one", "3 million"), a percent sign and a unit into a
:class:`Quantity` holding a :class:`fractions.Fraction`; numerals and exponents are bounded, so no input is slow.
:func:`quantities_equal` is exact, under the decimal rule of :class:`~vlm_capcurriculum.rewards.value.Quantity`; a
percent on one side only matches the bare number either way (``28\\%`` = ``28`` = ``0.28``: graders and datasets
write both); units follow :mod:`vlm_capcurriculum.rewards.units`.
"""

from __future__ import annotations

import re
from fractions import Fraction

from vlm_capcurriculum.rewards.bounds import MAX_DIGITS, MAX_EXPONENT_DIGITS
from vlm_capcurriculum.rewards.latex import squash
from vlm_capcurriculum.rewards.units import canonical_unit, conversion
from vlm_capcurriculum.rewards.value import Quantity

_NUM = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d{1,3}(?: \d{3})+(?![\d.,])|\d+)(?:\.\d*)?|\.\d+"
_SIGNED = rf"[+-]?\s*(?:{_NUM})"
_BRACED = rf"\{{\s*({_SIGNED})\s*\}}"
_EXPONENT = r"(?:\s*[eE]\s*([+-]?\d+)|\s*(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*(?:\{\s*([+-]?\d+)\s*\}|([+-]?\d)))"
_HEAD = re.compile(
    rf"(?P<sign>[+-]?)\s*(?:"
    rf"\\frac\s*(?:{_BRACED}|(\d))\s*(?:{_BRACED}|(\d))"  # \frac{a}{b}, \frac34, \frac{1}4
    rf"|(?P<num>{_NUM})(?:{_EXPONENT}|\s*/\s*(?P<den>{_NUM})|\s*\^\s*(?:\{{\s*(?P<pow>\d+)\s*\}}|(?P<pow1>\d)))?"
    rf"|(?P<inf>\\infty|infinity|inf)(?![A-Za-z])"
    rf")"
)
_PERCENT = re.compile(r"^(?:%|percent(?:age)?|per\s*cent|pct)(?![A-Za-z])\s*", re.IGNORECASE)
_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALE_RE = re.compile(r"^(thousand|million|billion|trillion)s?(?![A-Za-z])\s*", re.IGNORECASE)

_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
            "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]  # fmt: skip
_ONES = dict(zip(_NUMBERS, range(20), strict=True)) | {
    "none": 0, "a dozen": 12, "dozen": 12, "single": 1, "once": 1, "twice": 2, "a couple": 2, "a pair": 2, "no": 0,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORDS_RE = re.compile(
    r"^(?P<tens>"
    + "|".join(_TENS)
    + r")(?:[\s-]+(?P<unit>"
    + "|".join(k for k, v in _ONES.items() if 0 < v < 10 and " " not in k)
    + r"))?"
    r"|^(?P<ones>" + "|".join(sorted((k for k in _ONES if k != "no"), key=len, reverse=True)) + r")",
    re.IGNORECASE,
)
_HUNDRED = re.compile(rf"^(?:(?P<count>a|{'|'.join(_NUMBERS[1:10])})\s+)?hundred(?![A-Za-z])", re.IGNORECASE)
#: Words that start a number in prose ("three apples", "a dozen eggs"); "no" is a count only where one is expected.
NUMBER_WORDS = tuple(word for word in (*_ONES, *_TENS, "a hundred", "hundred") if word != "no")


def _numeral(text: str) -> Fraction | None:
    digits = text.replace(",", "").replace(" ", "")
    if len(digits) > MAX_DIGITS:
        return None
    return Fraction(digits) if digits else None


def parse_number_head(text: str) -> tuple[Quantity, str] | None:
    """The number at the start of ``text`` (its unit not read) and the rest of the text."""
    match = _HEAD.match(text)
    if not match:
        return _parse_words_head(text)
    sign = -1 if match.group("sign") == "-" else 1
    groups = match.groups()
    decimal = False
    if match.group("inf"):
        return Quantity(None, infinite=sign), text[match.end() :]
    if match.group("num") is None:  # \frac
        numerator = groups[1] if groups[1] is not None else groups[2]
        denominator = groups[3] if groups[3] is not None else groups[4]
        num, den = _numeral(squash(numerator)), _numeral(squash(denominator))
        if num is None or den is None or den == 0:
            return None
        value = num / den
        decimal = "." in numerator or "." in denominator
    else:
        raw = match.group("num")
        value = _numeral(raw)
        if value is None:
            return None
        decimal = "." in raw
        exponent = next((g for g in groups[6:9] if g is not None), None)
        if exponent is not None:
            if len(exponent.lstrip("+-")) > 3 or abs(int(exponent)) > MAX_EXPONENT_DIGITS:
                return None
            value *= Fraction(10) ** int(exponent)
        elif match.group("den") is not None:
            den = _numeral(match.group("den"))
            if den is None or den == 0:
                return None
            value /= den
            decimal = decimal or "." in match.group("den")
        else:
            power = match.group("pow") or match.group("pow1")
            if power is not None:
                if len(power) > 4 or int(power) * max(1, len(raw)) > MAX_EXPONENT_DIGITS or decimal:
                    return None
                value = value ** int(power)
    rest = text[match.end() :]
    return Quantity(sign * value, decimal=decimal), rest


def _parse_words_head(text: str) -> tuple[Quantity, str] | None:
    """ "twenty-one", "a dozen", "three hundred", "no" (only as a count: "no apples")."""
    lowered = text.lower()
    hundred = _HUNDRED.match(lowered)
    if hundred:
        count = hundred.group("count")
        factor = 1 if count in (None, "a", "one") else _ONES[count]
        return Quantity(Fraction(100 * factor)), text[hundred.end() :]
    match = _WORDS_RE.match(lowered)
    if not match or (match.end() < len(lowered) and lowered[match.end()].isalpha()):
        return None
    if match.group("tens"):
        value = _TENS[match.group("tens")] + (_ONES[match.group("unit")] if match.group("unit") else 0)
    else:
        value = _ONES[match.group("ones")]
    return Quantity(Fraction(value)), text[match.end() :]


_MIXED = re.compile(
    r"([+-]?)\s*(\d{1,6})\s*(?:\\frac\s*\{\s*(\d{1,6})\s*\}\s*\{\s*(\d{1,6})\s*\}|\s(\d{1,6})\s*/\s*(\d{1,6}))"
)


def _mixed_number(text: str) -> tuple[Quantity, str] | None:
    """``2\\frac{1}{2}`` and ``2 1/2`` are mixed numbers (5/2) when the fraction is proper, as people write them."""
    match = _MIXED.match(text)
    if not match:
        return None
    sign, whole = match.group(1), int(match.group(2))
    numerator = int(match.group(3) or match.group(5))
    denominator = int(match.group(4) or match.group(6))
    if not 0 < numerator < denominator:
        return None
    value = whole + Fraction(numerator, denominator)
    return Quantity(-value if sign == "-" else value), text[match.end() :]


_REPEATING = re.compile(r"([+-]?)\s*(\d{0,30})\.(\d{0,30})\s*\\overline\s*\{\s*(\d{1,30})\s*\}")


def _repeating_decimal(text: str) -> tuple[Quantity, str] | None:
    """``0.\\overline{3}`` is 1/3 and ``0.1\\overline{6}`` is 1/6, exactly."""
    match = _REPEATING.match(text)
    if not match:
        return None
    sign, whole, fixed, repeating = match.groups()
    scale = 10 ** len(fixed)
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), scale)
    value += Fraction(int(repeating), scale * (10 ** len(repeating) - 1))
    return Quantity(-value if sign == "-" else value), text[match.end() :]


def parse_quantity(text: str) -> Quantity | None:
    """A whole cleaned string as one number with optional scale word, percent and unit; None if it is anything else."""
    text = text.strip()
    head = _repeating_decimal(text) or _mixed_number(text) or parse_number_head(text)
    if head is None:
        return None
    quantity, rest = head
    rest = rest.strip()
    scale = _SCALE_RE.match(rest)
    if scale and quantity.value is not None:
        quantity = Quantity(quantity.value * _SCALE[scale.group(1).lower()], decimal=False)
        rest = rest[scale.end() :]
    percent = _PERCENT.match(rest)
    if percent:
        rest = rest[percent.end() :]
    unit = canonical_unit(rest)
    if unit is None:
        return None
    return Quantity(quantity.value, unit, bool(percent), quantity.decimal, quantity.infinite)


def quantities_equal(pred: Quantity, gold: Quantity) -> bool:
    if pred.unit and gold.unit and pred.unit != gold.unit:
        pred_conversion, gold_conversion = conversion(pred.unit), conversion(gold.unit)
        if pred_conversion is None or gold_conversion is None or pred_conversion[0] != gold_conversion[0]:
            return False
        if pred.value is None or gold.value is None or pred.percent != gold.percent:
            return False
        return pred.value * pred_conversion[1] == gold.value * gold_conversion[1]
    if pred.infinite or gold.infinite:
        return pred.infinite == gold.infinite
    assert pred.value is not None and gold.value is not None
    if pred.percent == gold.percent:
        return pred.value == gold.value
    percent, bare = (pred, gold) if pred.percent else (gold, pred)
    return percent.value == bare.value or percent.value / 100 == bare.value  # type: ignore[operator]
