"""Multiple choice: which single option an answer names.

An answer names option B when it is, as a whole: the letter in a common form (``B``, ``(b)``, ``B.``,
``\\text{B}``, ``Option B``, ``Answer: B``); the letter, a separator and text (``(B) blue``: the letter decides,
unless the text is exactly another option's); the letter and the option's own text (``B blue``); the letter and a
sentence saying so (``B is correct``); or the folded text of one option, a sentence ending in it after "is"/"are"
(``It is blue.``, not ``It is not blue.``), or a number equal to exactly one numeric option (``0.5`` for "1/2").
Never a letter inside prose (``A man is standing``) or an answer naming two options (``A or B``), unless that text
is itself an option's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vlm_capcurriculum.rewards.fold import COPULAS, fold, markup_free
from vlm_capcurriculum.rewards.latex import clean
from vlm_capcurriculum.rewards.quantity import parse_quantity, quantities_equal
from vlm_capcurriculum.schema.answer import AnswerSpec

_WRAPPED = r"(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|\{\s*([A-Za-z])\s*\}|([A-Za-z]))"
_PREFIX = r"(?:(?:the\s+)?(?:correct\s+|final\s+|best\s+|right\s+)?(?:option|choice|answer)\s*(?:is\s*)?[:：\-]?\s*)"
_LETTER_ONLY = re.compile(rf"{_PREFIX}?{_WRAPPED}\s*[.:)\]]?", re.IGNORECASE)
_LETTER_AND_TEXT = re.compile(
    rf"{_PREFIX}?{_WRAPPED}\s*(?P<sep>[.:,)\-–]|\s)\s*(?P<text>.+)", re.IGNORECASE | re.DOTALL
)
# "B is correct", "(B) is the answer": the letter, then a sentence saying it is the answer.
_LETTER_IS_ANSWER = re.compile(
    rf"{_PREFIX}?{_WRAPPED}\s+is\s+(?:the\s+)?(?:correct|right|best|answer|correct\s+answer|right\s+answer)"
    r"(?:\s+(?:answer|option|choice))?",
    re.IGNORECASE,
)
# Another option letter named in the text after a letter: "(A) or (B)", "A. and B", "A, C", "A. B".
_ANOTHER_LETTER = re.compile(r"(?:\b(?:or|and|nor)\s+|[,/&]\s*)\(?([A-Z])\)?(?=$|[\s.,;:)])")
_LONE_LETTER = re.compile(r"\(?([A-Z])\)?[.)]?")


def _letter(match: re.Match[str]) -> str:
    return next(group for group in match.groups()[:4] if group).upper()


def parse_choice(answer: str, choices: Mapping[str, str] | None = None) -> str | None:
    """The letter of the one option ``answer`` names (upper case), or None."""
    choices = choices or {}
    text = markup_free(answer).strip().rstrip(".").strip()
    if not text:
        return None
    match = _LETTER_ONLY.fullmatch(text) or _LETTER_IS_ANSWER.fullmatch(text)
    if match:
        letter = _letter(match)
        return None if choices and letter not in choices else letter
    by_text = _by_option_text(text, choices)
    if by_text is not None:
        return by_text
    match = _LETTER_AND_TEXT.fullmatch(text)
    if match:
        letter = _letter(match)
        rest = match.group("text")
        others = _ANOTHER_LETTER.findall(rest)
        lone = _LONE_LETTER.fullmatch(rest.strip())
        if lone:
            others.append(lone.group(1))
        if any(other.upper() != letter for other in others):
            return None
        separated = match.group("sep").strip() != "" or text[0] in "([{" or re.match(_PREFIX, text, re.IGNORECASE)
        if not choices:
            return letter if separated else None
        named = _by_option_text(rest, choices)
        if letter not in choices:
            return None
        if named is not None and named != letter:
            return None  # "B: red" when red is option A: contradictory
        if separated or named == letter:
            return letter
    return None


def _by_option_text(text: str, choices: Mapping[str, str]) -> str | None:
    """The one option whose text ``text`` is (folded), or whose number it equals."""
    if not choices:
        return None
    folded = fold(text)
    if folded:
        options = {letter: fold(option) for letter, option in choices.items()}
        matches = [letter for letter, option in options.items() if option == folded]
        if not matches:  # "It is blue.": a sentence whose last words after "is" are an option's text
            words = folded.split()
            cut = max((i for i, word in enumerate(words) if word in COPULAS), default=-1)
            if cut >= 0:
                tail = " ".join(words[cut + 1 :])
                matches = [letter for letter, option in options.items() if option and option == tail]
        if len(matches) == 1:
            return matches[0]
        if matches:
            return None
    quantity = parse_quantity(clean(text))
    if quantity is None:
        return None
    equal = []
    for letter, option in choices.items():
        option_quantity = parse_quantity(clean(option))
        if option_quantity is not None and quantities_equal(quantity, option_quantity):
            equal.append(letter)
    return equal[0] if len(equal) == 1 else None


def verify_choice(answer: str, spec: AnswerSpec) -> bool:
    """Whether ``answer`` names exactly the gold option."""
    return parse_choice(answer, spec.choices) == spec.answer.strip().upper()
