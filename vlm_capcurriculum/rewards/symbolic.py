"""Symbolic equivalence for the answers the exact rules cannot settle; runs only in a guard worker process.

Parsing is Math-Verify's ``LatexExtractionConfig`` (latex2sympy2_extended's ANTLR grammar), never
``ExprExtractionConfig``, which runs ``sympy.parse_expr`` and so ``eval``. Parsed trees are checked for numbers too
large to compute (``10^{10^{10}}``, ``1000000!``) before anything is simplified: sympy would hold the CPU for minutes.
Comparison is Math-Verify's ``verify`` with set/relation comparison both ways and floats rounded to
:data:`~vlm_capcurriculum.rewards.bounds.FLOAT_ROUNDING` places, for the decimal rule of
:class:`~vlm_capcurriculum.rewards.value.Quantity`.
"""

from __future__ import annotations

import logging
import math
import re
from functools import lru_cache

from vlm_capcurriculum.rewards.bounds import (
    CACHE_SIZE,
    FLOAT_ROUNDING,
    MAX_FACTORIAL_DIGITS,
    MAX_FLOAT_FACTORIAL,
    MAX_LOG10,
    MAX_NESTING,
    MAX_NODES,
    MAX_TERMS,
)
from vlm_capcurriculum.rewards.brackets import nesting

# Python's power operator (latex2sympy would reject it anyway), giant numerals, and binomials or factorials of big
# numerals, which latex2sympy evaluates while parsing.
_BIG = rf"\d{{{MAX_FACTORIAL_DIGITS + 1},}}"
_STRING_SCREEN = re.compile(rf"\*\*|\d{{{MAX_LOG10},}}|\\binom\s*\{{?\s*{_BIG}|{_BIG}\s*\)?\s*!")


logging.getLogger("math_verify").setLevel(logging.CRITICAL)  # a model's unparsable answer is not worth a log line
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)


class TooLarge(Exception):
    """An answer whose evaluation would not finish: scored 0 without being simplified."""


def parse_latex(text: str) -> list:
    from math_verify import LatexExtractionConfig, parse

    if _STRING_SCREEN.search(text):
        raise TooLarge("python power operator or giant numeral")
    if nesting(text) > MAX_NESTING:
        raise TooLarge("nested too deep")
    return parse(f"\\boxed{{{text}}}", extraction_config=[LatexExtractionConfig()], parsing_timeout=None)


def check_size(expr: object) -> None:
    """Raise :class:`TooLarge` when ``expr`` could denote a number beyond 10**MAX_LOG10 or is too big a tree
    (magnitudes estimated in floats and log space, never computed)."""
    import sympy

    stack = [expr]
    nodes = 0
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise TooLarge("expression too large")
        if isinstance(node, (sympy.Pow, sympy.factorial, sympy.factorial2, sympy.binomial, sympy.Integer)) and (
            _log10(node) > MAX_LOG10
        ):
            raise TooLarge("number too large")
        if isinstance(node, (sympy.Sum, sympy.Product)) and _span(node) > MAX_TERMS:
            raise TooLarge("sum or product over too many terms")
        args = tuple(node) if isinstance(node, sympy.MatrixBase) else getattr(node, "args", ())
        stack.extend(arg for arg in args if isinstance(arg, (sympy.Basic, sympy.MatrixBase)))


def _span(node: object) -> float:
    """How many terms a Sum/Product runs over (inf when a limit is not a moderate constant)."""
    total = 1.0
    for limits in node.limits:  # type: ignore[attr-defined]
        if len(limits) != 3:
            return math.inf
        low, high = _value(limits[1]), _value(limits[2])
        if low is None or high is None or limits[1].free_symbols or limits[2].free_symbols:
            continue  # symbolic limits (n): sympy returns a closed form or leaves it unevaluated
        total *= max(0.0, high - low + 1)
    return total


def _value(node: object) -> float | None:
    """The float value of a moderate constant subtree, else None; symbols and other functions count as 1 (only
    constant towers can explode)."""
    import sympy

    try:
        if isinstance(node, sympy.Number):
            return float(node)
        if isinstance(node, sympy.Add):
            values = [_value(arg) for arg in node.args]
            return None if None in values else float(sum(values))  # type: ignore[arg-type]
        if isinstance(node, sympy.Mul):
            product, has_zero = 1.0, False
            for arg in node.args:
                value = _value(arg)
                if value is None:
                    return None
                has_zero = has_zero or value == 0
                product *= value
            return product if math.isfinite(product) and (product != 0 or has_zero) else None
        if isinstance(node, sympy.Pow):
            base, exponent = _value(node.base), _value(node.exp)
            if base is None or exponent is None:
                return None
            result = abs(base) ** exponent if base != 0 or exponent >= 0 else math.inf
            if not math.isfinite(result) or (result == 0 and base != 0):
                return None  # overflow, or underflow: 10^{-10^{10}} is as hard to write exactly as 10^{10^{10}}
            return result
        if isinstance(node, (sympy.factorial, sympy.factorial2)):
            n = _value(node.args[0])
            return None if n is None or n > MAX_FLOAT_FACTORIAL else math.gamma(max(n, 0) + 1)
    except (OverflowError, ValueError, ZeroDivisionError, TypeError):
        return None
    return 1.0


def _log10(node: object) -> float:
    """Estimated digits to write a subtree's value exactly (|log10|, either way: 10^{-10^{10}} needs as many as
    10^{10^{10}}); inf when unbounded."""
    import sympy

    value = _value(node)
    if value is not None and not isinstance(node, sympy.Rational):
        return abs(math.log10(abs(value))) if value else 0.0
    if isinstance(node, sympy.Integer):
        return math.log10(abs(int(node))) if node else 0.0
    if isinstance(node, sympy.Rational):
        return max(math.log10(abs(node.p)) if node.p else 0.0, math.log10(node.q))
    if isinstance(node, sympy.Add):
        return max(_log10(arg) for arg in node.args) + math.log10(len(node.args))
    if isinstance(node, sympy.Mul):
        return sum(_log10(arg) for arg in node.args)
    if isinstance(node, sympy.Pow):
        exponent = _value(node.exp)
        base = _log10(node.base)
        if exponent is None:
            return 0.0 if base < 1e-12 else math.inf
        return abs(exponent) * base
    if isinstance(node, (sympy.factorial, sympy.factorial2)):
        n = _value(node.args[0])
        return math.inf if n is None else math.lgamma(max(n, 0) + 1) / math.log(10)
    if isinstance(node, sympy.binomial):
        n = _value(node.args[0])
        return math.inf if n is None else abs(n) * math.log10(2)
    return max((_log10(arg) for arg in getattr(node, "args", ())), default=0.0)


def equivalent(pred: str, gold: str) -> bool:
    """Whether ``pred`` and ``gold`` denote the same object; :class:`TooLarge` for answers that would not finish,
    False for any other failure."""
    from math_verify import verify

    try:
        gold_parsed = parse_latex(gold)
        pred_parsed = parse_latex(pred)
    except TooLarge:
        raise
    except (Exception, RecursionError):
        return False
    if not gold_parsed or not pred_parsed:
        return False
    for parsed in (*gold_parsed, *pred_parsed):
        if not isinstance(parsed, str):
            check_size(parsed)
    try:
        return bool(
            verify(
                gold_parsed,
                pred_parsed,
                float_rounding=FLOAT_ROUNDING,
                timeout_seconds=None,
                allow_set_relation_comp=True,
            )
        )
    except (Exception, RecursionError):
        return False


_WARM_UP = (
    ("\\frac{1}{2}", "0.5"),
    ("x \\in [-2, 7]", "-2 \\le x \\le 7"),
    ("(0, 1) \\cup \\{3\\}", "\\{1, 2\\}"),
    ("\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}", "\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix}"),
    ("\\sum_{k=0}^{n} k", "\\frac{n(n+1)}{2}"),
    ("y = 2x + 1", "2x - y + 1 = 0"),
)


def warm_up() -> None:
    """Exercise the parser once, so a fresh worker's first answers do not pay for imports and ANTLR's tables."""
    for pred, gold in _WARM_UP:
        equivalent(pred, gold)


@lru_cache(maxsize=CACHE_SIZE)
def _remembered(pred: str, gold: str) -> bool | None:
    try:
        return equivalent(pred, gold)
    except TooLarge:
        return None


def remembered_equivalent(pred: str, gold: str) -> bool:
    """:func:`equivalent`, remembered for the life of the worker (rejections too: a batch repeats its answers)."""
    verdict = _remembered(pred, gold)
    if verdict is None:
        raise TooLarge("remembered as too large")
    return verdict


#: What a guard worker may run, by name.
TASKS = {"equivalent": remembered_equivalent}
