"""LaTeX clean-up shared by the verifiers: one canonical spelling for what only differs in typesetting.

Cleaning never changes what an answer means: ``\\dfrac``/``\\tfrac`` are ``\\frac``, ``\\left(`` is ``(``, spacing
commands are spaces, ``\\text{...}`` is its text, ``^{\\circ}`` and ``°`` are one degree token, ``{,}`` and ``,\\!``
between digit groups are thousands separators, currency signs are dropped. Inputs are bounded in length by the
caller (:data:`vlm_capcurriculum.rewards.bounds.MAX_ANSWER_CHARS`); every regex here is linear.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction
from functools import lru_cache

from vlm_capcurriculum.rewards.bounds import CACHE_SIZE, CACHED_TEXT_CHARS
from vlm_capcurriculum.rewards.brackets import encloses, top_level

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u2014": "-",
    "\u00d7": "\\times ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u00f7": "\\div ",
    "\u221a": "\\sqrt",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "\u2248": "\\approx ",
    "\u00b0": "^\\circ ",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u222a": "\\cup ",
    "\u2229": "\\cap ",
    "\u2205": "\\emptyset ",
    "\u2208": "\\in ",
    "\uff0c": ",",  # full-width comma
    "\uff1a": ":",
    "\u20ac": "",  # euro
    "\u00a3": "",  # pound sterling
    "\u00a5": "",  # yen / yuan
}
# Vulgar fractions (½, ⅓, ⅞...) are the fraction they show; "2½" is then the mixed number 2\frac{1}{2}.
_UNICODE.update(
    {
        char: "\\frac{{{}}}{{{}}}".format(*Fraction(unicodedata.numeric(char)).limit_denominator(10).as_integer_ratio())
        for char in "\u00bc\u00bd\u00be\u2150\u2151\u2152\u2153\u2154\u2155\u2156\u2157\u2158\u2159\u215a"
        "\u215b\u215c\u215d\u215e"
    }
)
_UNICODE_RE = re.compile("|".join(re.escape(key) for key in _UNICODE))

_TEXT_COMMANDS = re.compile(
    r"\\(?:text|textbf|textit|textrm|textsf|texttt|textnormal|textup|mbox|hbox|mathrm|mathbf|mathit|mathsf|mathtt|"
    r"mathnormal|operatorname|emph|boldsymbol|bm)\s*\{([^{}]*)\}"
)
_DROP_COMMANDS = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![A-Za-z])\.?"
    r"|\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![A-Za-z])"
    r"|\\(?:boxed|fbox|framebox)(?![A-Za-z])"
)
_FRAC_VARIANTS = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_EMPTY_SET = re.compile(r"\\(?:varnothing|emptyset)(?![A-Za-z])|\\\{\s*\\\}|\\O(?![A-Za-z])")
_BINOM_VARIANTS = re.compile(r"\\[dt]binom(?![A-Za-z])")
_GROUPED_THOUSANDS = re.compile(r"(?<=\d)\s*\{\s*,\s*\}\s*(?=\d)|(?<=\d),\s*\\!\s*(?=\d{3})")
_SPACING = re.compile(r"\\[,;:! ]|\\q?quad(?![A-Za-z])|~|\\hspace\s*\{[^{}]*\}")
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\degree(?![A-Za-z])")
_CURRENCY = re.compile(r"\\\$|\$|\\(?:euro|pounds|yen)(?![A-Za-z])")
_WHITESPACE = re.compile(r"\s+")
# "\approx 3.14", "= 5": a leading relation sign in front of a bare value says "the answer is".
_LEADING_SIGN = re.compile(r"^(?:\\approx|\\sim|\\simeq|=)\s*(?=[^=\s])")


def clean(text: str) -> str:
    """The canonical spelling of an answer (see the module docstring); idempotent: the rules are applied until
    nothing changes (one rule's output can be another's input: ``\\{$\\}`` is an empty set once ``$`` is gone).
    Short texts (answers) are cached: the rollouts of one prompt repeat them."""
    return _clean_cached(text) if len(text) <= CACHED_TEXT_CHARS else _clean(text)


def _clean(text: str) -> str:
    for _ in range(8):
        cleaned = _clean_once(text)
        if cleaned == text:
            break
        text = cleaned
    return text


_clean_cached = lru_cache(maxsize=CACHE_SIZE)(_clean)


def _clean_once(text: str) -> str:
    # "\\\\" (a row break) is one token: hide it so that "\\\\%" is not read as "\\" + "\\%".
    text = text.replace("\x00", "").replace("\\\\", "\x00")
    text = _UNICODE_RE.sub(lambda match: _UNICODE[match.group()], text)
    text = _WHITESPACE.sub(" ", text)  # first, so that "\\" + newline is the spacing command "\\ " it renders as
    text = text.replace("\\%", "%")
    text = _GROUPED_THOUSANDS.sub("", text)
    text = _FRAC_VARIANTS.sub("\\\\frac", text)
    text = _EMPTY_SET.sub("\\\\emptyset", text)
    text = _BINOM_VARIANTS.sub("\\\\binom", text)
    text = _DROP_COMMANDS.sub("", text)
    for _ in range(4):  # nested \text{\textbf{x}}: a few rounds, never unbounded
        unwrapped = _TEXT_COMMANDS.sub(lambda match: f" {match.group(1)} ", text)
        if unwrapped == text:
            break
        text = unwrapped
    text = _DEGREE.sub(" ° ", text)
    text = _CURRENCY.sub(" ", text)
    text = _SPACING.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip().replace("\x00", "\\\\")
    text = _LEADING_SIGN.sub("", text).rstrip(". ").strip()
    return strip_outer_braces(text)


def squash(text: str) -> str:
    """``text`` without any whitespace (spacing never changes a numeral or a formula's meaning)."""
    return "".join(text.split())


def strip_outer_braces(text: str) -> str:
    """``{x}`` is ``x`` when the braces enclose everything (LaTeX grouping); ``{1, 2}`` stays: a set."""
    while text.startswith("{") and text.endswith("}") and encloses(text, "{", "}"):
        inner = text[1:-1].strip()
        if any(char in ",;" for _, char in top_level(inner)):
            return text
        text = inner
    return text
