"""Counts and other short numeric answers ("3", "three", "3 apples", "There are three apples.").

A whole answer that is one number (with an optional unit or noun) is that number; in a sentence, the answer is its
number only if every number in it has the same value ("3 cats and 2 dogs" is no answer; "There are no dogs." is 0).
A bound or a hedge ("at least 3", "3 or more", "maybe 3", "≥ 3") is not the number. Answers written as maths
(``\\frac{6}{2}``, ``2+1``) go to the maths verifier.
"""

from __future__ import annotations

import re
from fractions import Fraction

from vlm_capcurriculum.rewards.fold import markup_free
from vlm_capcurriculum.rewards.latex import clean
from vlm_capcurriculum.rewards.quantity import NUMBER_WORDS, parse_number_head, parse_quantity, quantities_equal
from vlm_capcurriculum.rewards.value import Quantity
from vlm_capcurriculum.rewards.verifiers.math import verify_math_exact
from vlm_capcurriculum.schema.answer import AnswerSpec

_MATHS = re.compile(r"\\[A-Za-z]+|[\^+*=]|\d\s*/\s*\d")
_NUMBER_START = re.compile(rf"(?<![\w.])(?=[+-]?\d|\.\d|(?:{'|'.join(NUMBER_WORDS)})(?![A-Za-z]))", re.IGNORECASE)


# A number stated as a bound ("at least 3", "more than 3", "3 or more", "up to 3", "nearly 3", "> 3"). An estimate
# ("about 3", "\approx 3") is the number, as in maths answers.
_QUALIFIED = re.compile(
    r"\b(?:at\s+(?:least|most)|(?:more|less|fewer|greater|higher|lower|other)\s+than|up\s+to|over|under|above|below"
    r"|nearly|almost|maybe|perhaps|possibly|between|not)\s+(?=\S)"
    r"|\b(?:or|and)\s+(?:more|less|fewer|above|below|over|under)\b|[<>≤≥]|\\(?:[lg]eq?|[lg]t)(?![A-Za-z])"
    r"|\d\s*\+(?!\s*\d)",
    re.IGNORECASE,
)
# "There are no dogs": a count of zero ("no more than 3" is not).
_NO_COUNT = re.compile(r"\bno\s+(?!more\b|less\b|fewer\b|longer\b|doubt\b)[A-Za-z]", re.IGNORECASE)


def parse_number(answer: str) -> Quantity | None:
    """The one number ``answer`` gives, or None."""
    if _QUALIFIED.search(answer):
        return None
    text = clean(answer)
    whole = parse_quantity(text)
    if whole is not None:
        return whole
    values: list[Quantity] = []
    prose = markup_free(answer)
    for match in _NUMBER_START.finditer(prose):
        head = parse_number_head(prose[match.start() :])
        if head is not None and head[0].value is not None:
            values.append(head[0])
    if _NO_COUNT.search(prose):
        values.append(Quantity(Fraction(0)))
    distinct = {quantity.value for quantity in values}
    if len(distinct) != 1:
        return None
    value: Fraction | None = distinct.pop()
    return Quantity(value, decimal=any(quantity.decimal for quantity in values))


def verify_number(answer: str, spec: AnswerSpec) -> bool | None:
    """True/False when decided here; None when the answer is maths the exact rules cannot settle."""
    gold = parse_quantity(clean(spec.answer))
    pred = parse_number(answer)
    if gold is not None and pred is not None:
        return quantities_equal(pred, gold)
    if gold is None or _MATHS.search(answer):  # written as maths: the maths verifier (symbolic path included) decides
        return verify_math_exact(answer, spec.answer)
    return False
