"""Exact structure of a maths answer: numbers, lists, sets, tuples, intervals, unions, matrices, ratios, words.

:func:`parse_value` turns a cleaned answer into a tree of :mod:`~vlm_capcurriculum.rewards.value` (None when any
part is outside the grammar); :func:`values_equal` compares two trees: True, False, or None when only the symbolic
path can tell. Pure Python over bounded input: the fast path that settles most answers without sympy.

Decisions, each applied to both sides alike:

* a bare list (``1, 2``), a list joined by "and"/"or", a set and the two roots of ``a \\pm b`` are unordered;
  tuples and intervals keep order and brackets; the parts of a union are unordered;
* a label in front of a value is dropped (``x = 3``, ``(p, q) = (3, 2)``, ``x \\in [0, 1)``), and when every element
  on both sides carries one, elements match by label; a label is a name, never an expression (``a + 3z = 0`` is an
  equation);
* a semicolon separates tuples when its groups are labelled lists (``p=5,q=2; p=7,q=2``), else it is a comma;
* a top-level comma followed by exactly three digits and no space joins thousands (``7,425,000``);
* an inequality in one name with constant bounds is the interval it describes (``-2 \\le x \\le 7`` is ``[-2, 7]``)
  when compared with an interval or union.
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

from vlm_capcurriculum.rewards import expr
from vlm_capcurriculum.rewards.bounds import CACHE_SIZE, MAX_NESTING
from vlm_capcurriculum.rewards.brackets import encloses, nesting, split_top_level
from vlm_capcurriculum.rewards.quantity import parse_quantity, quantities_equal
from vlm_capcurriculum.rewards.value import (
    Items,
    Matrix,
    Node,
    Op,
    Quantity,
    Seq,
    Union,
    Value,
    Words,
    is_relation,
)

_NAME = r"(?:\\?[A-Za-z]+'*(?:_\{?[A-Za-z0-9,]+\}?)?(?:\^\{?[A-Za-z0-9*]+\}?)?(?:\([A-Za-z, ]+\))?|\|[A-Za-z]+\|)"
_LABEL = re.compile(
    rf"^\s*((?:{_NAME}(?:\s*[:/]\s*{_NAME})*|\(\s*{_NAME}(?:\s*,\s*{_NAME})*\s*\)|\\frac\{{[A-Za-z]+\}}\{{[A-Za-z]+\}}))"
    rf"\s*(?:=|\\in(?![A-Za-z]))\s*(?P<value>.+)$"
)
_WORD_SEPARATOR = re.compile(r"\s*(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])\s*")
_WORDS = re.compile(r"[A-Za-z][A-Za-z'\- ]*[A-Za-z]")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
_MATRIX = re.compile(r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL)
_THOUSANDS_PIECE = re.compile(r"\d{3}(?:\.\d+)?(?![\d])")
_PM = re.compile(r"\\(?:pm|mp)(?![A-Za-z])")
_CHAIN_NAME = re.compile(_NAME)
_ASCENDING, _DESCENDING = frozenset({"<", "<="}), frozenset({">", ">="})
_INFINITY = {sign: Quantity(None, infinite=sign) for sign in (1, -1)}


def _merge_thousands(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Re-join ``7,425,000`` that a top-level comma split apart (comma, no space, exactly three digits)."""
    merged: list[tuple[str, str]] = []
    for piece, separator in pieces:
        if (
            merged
            and merged[-1][1] == ","
            and _THOUSANDS_PIECE.match(piece)
            and re.search(r"(?:^|[^\d.,])[+-]?\d{1,3}(?:,\d{3})*$", merged[-1][0].strip() or "x")
            and not merged[-1][0].endswith(" ")
        ):
            previous = merged.pop()[0]
            merged.append((previous + "," + piece, separator))
        else:
            merged.append((piece, separator))
    return merged


@lru_cache(maxsize=CACHE_SIZE)
def parse_value(text: str, *, strip_labels: bool = True) -> Value | None:
    """A cleaned answer as a value tree, or None outside the exact grammar; cached (a gold answer is parsed once for
    all its rollouts). ``strip_labels=False`` keeps ``y = 2x + 1`` an equation (used when the gold answer is one)."""
    if nesting(text) + text.count("\\begin") > MAX_NESTING:
        return None  # the parser recurses only into brackets and matrices: this bounds its depth
    return _ValueParser(strip_labels).value(text)


class _ValueParser:
    def __init__(self, strip_labels: bool) -> None:
        self.strip_labels = strip_labels

    def value(self, text: str) -> Value | None:
        text = text.strip()
        if not text:
            return None
        pieces = _merge_thousands(split_top_level(text))
        if not _WORDS.fullmatch(text):  # "1, 2 and 3", "(7,11) or (11,7)"; but "black and white" is one answer
            pieces = [
                (part, separator)
                for piece, separator in pieces
                for part in _WORD_SEPARATOR.split(piece)
                if part.strip()
            ]
        if len(pieces) > 1:
            if any(separator == ";" for _, separator in pieces) and "," in text:
                groups = [piece for piece, _ in split_top_level(text, ";")]
                if all(_LABEL.match(part) for group in groups for part, _ in split_top_level(group, ",")):
                    pieces = [(f"({group})", ";") for group in groups]
            return self.items([piece for piece, _ in pieces if piece.strip()])
        return self.item(text)

    def items(self, pieces: list[str]) -> Value | None:
        values: list[Value] = []
        labels: list[str | None] = []
        for piece in pieces:
            label, rest = self.split_label(piece)
            value = self.item(rest)
            if value is None:
                return None
            if isinstance(value, Items) and not any(value.labels):
                values.extend(value.items)  # the two roots of a \pm inside a list
                labels.extend([None] * len(value.items))
            else:
                values.append(value)
                labels.append(label)
        if len(values) == 1:
            return values[0]
        return Items(tuple(values), tuple(labels))

    def split_label(self, text: str) -> tuple[str | None, str]:
        if not self.strip_labels:
            return None, text.strip()
        match = _LABEL.match(text)
        if not match:
            return None, text.strip()
        value = match.group("value")
        if "=" in value:
            return None, text.strip()  # a chain or an equation, not a labelled value
        label = re.sub(r"[\s{}]", "", match.group(1))
        return label, value.strip()

    def item(self, text: str) -> Value | None:
        _, text = self.split_label(text)
        if not text:
            return None
        if _PM.search(text):
            return self.plus_minus(text)
        parts = re.split(r"\\cup(?![A-Za-z])", text)
        if len(parts) > 1:
            values = [self.item(part) for part in parts]
            if any(value is None for value in values):
                return None
            return Union(tuple(values))  # type: ignore[arg-type]
        if text == "\\emptyset":
            return Items((), ())
        if text.startswith("\\{") and text.endswith("\\}"):
            return self.collection(text[2:-2])
        if text[0] == "{" and encloses(text):
            return self.collection(text[1:-1])
        if text[0] in "([" and text[-1] in ")]" and encloses(text):
            return self.sequence(text)
        matrix = _MATRIX.match(text)
        if matrix:
            return self.matrix(matrix.group(2))
        if ":" in text:
            pieces = [piece for piece, _ in split_top_level(text, ":")]
            quantities = [parse_quantity(piece) for piece in pieces]
            if len(pieces) > 1 and all(quantities):
                return Seq(":", ":", tuple(quantities))  # type: ignore[arg-type]
            return None
        return self.leaf(text)

    def leaf(self, text: str) -> Value | None:
        quantity = parse_quantity(text)
        if quantity is not None:
            return quantity
        chain = self.inequality_chain(text)
        if chain is not None:
            return chain
        if _WORDS.fullmatch(text) and (" " in text or (len(text) >= 3 and _VOWEL.search(text) and not text.isupper())):
            return Words(re.sub(r"\s+", " ", text.lower()))
        try:
            return expr.parse_expression(text)
        except (expr.Unsupported, ValueError, ZeroDivisionError, OverflowError):
            return None

    def collection(self, inner: str) -> Value | None:
        pieces = [piece for piece, _ in split_top_level(inner) if piece.strip()]
        if not pieces:
            return Items((), ())
        value = self.items(pieces)
        if value is None or isinstance(value, Items):
            return value
        return Items((value,), (None,))

    def sequence(self, text: str) -> Value | None:
        inner = text[1:-1].strip()
        matrix = _MATRIX.match(inner)
        if matrix:
            return self.matrix(matrix.group(2))
        pieces = [piece for piece, _ in split_top_level(inner)]
        values = [self.item(piece) for piece in pieces]
        if any(value is None for value in values):
            return None
        if len(values) == 1:
            return values[0]
        return Seq(text[0], text[-1], tuple(values))  # type: ignore[arg-type]

    def matrix(self, body: str) -> Value | None:
        rows = []
        for row in re.split(r"\\\\", body):
            if not row.strip():
                continue
            cells = [self.item(cell) for cell in row.split("&")]
            if any(cell is None for cell in cells):
                return None
            rows.append(tuple(cells))
        if not rows or len({len(row) for row in rows}) != 1:
            return None
        return Matrix(tuple(rows))  # type: ignore[arg-type]

    def inequality_chain(self, text: str) -> Seq | None:
        """``a < x \\le b`` (or ``b > x \\ge a``) with a name in the middle and constant bounds, as an interval."""
        pieces, operators = expr.split_relations(text)
        if len(operators) != 2 or not _CHAIN_NAME.fullmatch(pieces[1].strip()):
            return None
        if set(operators) <= _ASCENDING:
            (low, high), (low_op, high_op) = (pieces[0], pieces[2]), operators
        elif set(operators) <= _DESCENDING:
            (low, high), (low_op, high_op) = (pieces[2], pieces[0]), operators[::-1]
        else:
            return None
        bounds = [self.leaf(bound.strip()) for bound in (low, high)]
        varying = [isinstance(bound, Op) and (is_relation(bound) or expr.variables(bound)) for bound in bounds]
        if None in bounds or any(varying):
            return None
        left = "(" if low_op in ("<", ">") else "["
        right = ")" if high_op in ("<", ">") else "]"
        return Seq(left, right, tuple(bounds))  # type: ignore[arg-type]

    def plus_minus(self, text: str) -> Value | None:
        """``a \\pm b`` is the two values a + b and a - b (``\\pm b`` is b and -b)."""
        pieces = _PM.split(text)
        if len(pieces) != 2:
            return None
        base_text, offset_text = pieces[0].strip(), pieces[1].strip()
        offset = _as_node(self.leaf(offset_text))
        base = _as_node(self.leaf(base_text)) if base_text else Quantity(Fraction(0))
        if offset is None or base is None:
            return None
        return Items((Op("add", (base, offset)), Op("sub", (base, offset))), (None, None))


def _numbers_equal(pred: Node, gold: Node) -> Verdict:
    """Two numbers or expressions; ``60^\\circ`` equals an expression of 60 (degrees) or of ``\\frac{\\pi}{3}``
    (radians)."""
    angle, other = (pred, gold) if isinstance(pred, Quantity) else (gold, pred)
    if isinstance(angle, Quantity) and angle.unit == "°" and isinstance(other, Op) and angle.value is not None:
        if angle.percent:
            return None
        degrees = Quantity(angle.value, decimal=angle.decimal)
        radians = Op("div", (Op("mul", (degrees, Op("const", ("pi",)))), Quantity(Fraction(180))))
        verdicts = [expr.compare(other, degrees), expr.compare(other, radians)]
        if True in verdicts:
            return True
        return None if None in verdicts else False
    pred_node, gold_node = _as_node(pred), _as_node(gold)
    if pred_node is None or gold_node is None:
        return None
    return expr.compare(pred_node, gold_node)


def _relation_interval(value: Value) -> Seq | None:
    """``x > 5`` as ``(5, \\infty)``, ``5 \\ge x`` as ``(-\\infty, 5]``: a relation between one name and a constant
    (relations are stored as ``>``/``>=``), else None."""
    if not is_relation(value):
        return None
    operator, left, right = value.args  # type: ignore[union-attr]
    closed = operator == ">="
    if operator not in (">", ">="):
        return None
    if isinstance(left, Op) and left.kind == "var" and not expr.variables(right):  # x > c
        return Seq("[" if closed else "(", ")", (right, _INFINITY[1]))
    if isinstance(right, Op) and right.kind == "var" and not expr.variables(left):  # c > x
        return Seq("(", "]" if closed else ")", (_INFINITY[-1], left))
    return None


def _as_intervals(value: Value) -> Value | None:
    """A relation, or a list of relations joined by "or", as the interval or union it describes (None if not)."""
    if isinstance(value, Items) and value.items and all(is_relation(item) for item in value.items):
        parts = [_relation_interval(item) for item in value.items]
        return None if any(part is None for part in parts) else Union(tuple(parts))  # type: ignore[arg-type]
    return _relation_interval(value)


def _as_node(value: Value | None) -> Node | None:
    """A plain number or expression as an expression node (None for units, percents, words...)."""
    if isinstance(value, Op) or (isinstance(value, Quantity) and value.plain):
        return value
    return None


Verdict = bool | None


def _all(verdicts: list[Verdict]) -> Verdict:
    if any(verdict is False for verdict in verdicts):
        return False
    if any(verdict is None for verdict in verdicts):
        return None
    return True


def values_equal(pred: Value, gold: Value) -> Verdict:
    """Equality of two parsed answers (rules in the module docstring): True, False, or None when only the symbolic
    path can tell."""
    if isinstance(pred, Items) and len(pred.items) == 1:
        pred = pred.items[0]
    if isinstance(gold, Items) and len(gold.items) == 1:
        gold = gold.items[0]
    if isinstance(pred, Quantity) and isinstance(gold, Quantity):
        return quantities_equal(pred, gold)
    if isinstance(pred, (Op, Quantity)) and isinstance(gold, (Op, Quantity)):
        return _numbers_equal(pred, gold)
    pred_set, gold_set = _as_intervals(pred), _as_intervals(gold)
    if (pred_set is None) != (gold_set is None):  # relations on one side only: against an interval, as sets
        pred_set, gold_set = pred_set or pred, gold_set or gold
        if all(isinstance(side, (Seq, Union)) for side in (pred_set, gold_set)):
            return values_equal(pred_set, gold_set)
    if is_relation(pred) or is_relation(gold):
        return None  # a relation against anything else: the symbolic path's call
    ordered = _labelled_as_tuple(pred, gold)
    if ordered is not None:
        return ordered
    if isinstance(pred, Items) != isinstance(gold, Items):  # {a, a} is a
        pred = pred if isinstance(pred, Items) else Items((pred,), (None,))
        gold = gold if isinstance(gold, Items) else Items((gold,), (None,))
    if type(pred) is not type(gold):
        return False
    if isinstance(pred, Items) and isinstance(gold, Items):
        if (  # both sides label every element, with the same distinct labels: elements pair by label
            all(pred.labels)
            and all(gold.labels)
            and set(pred.labels) == set(gold.labels)
            and len(set(gold.labels)) == len(gold.labels) == len(pred.labels)
        ):
            by_label = dict(zip(pred.labels, pred.items, strict=True))
            pairs = zip(gold.labels, gold.items, strict=True)
            return _all([values_equal(by_label[label], item) for label, item in pairs])
        return _same_set(pred.items, gold.items)
    if isinstance(pred, Seq) and isinstance(gold, Seq):
        if pred.left != gold.left or pred.right != gold.right or len(pred.items) != len(gold.items):
            return False
        return _all([values_equal(p, g) for p, g in zip(pred.items, gold.items, strict=True)])
    if isinstance(pred, Union) and isinstance(gold, Union):
        return _same_set(pred.parts, gold.parts)
    if isinstance(pred, Matrix) and isinstance(gold, Matrix):
        if len(pred.rows) != len(gold.rows) or len(pred.rows[0]) != len(gold.rows[0]):
            return False
        return _all(
            [
                values_equal(p, g)
                for pr, gr in zip(pred.rows, gold.rows, strict=True)
                for p, g in zip(pr, gr, strict=True)
            ]
        )
    if isinstance(pred, Words) and isinstance(gold, Words):
        return pred.text == gold.text
    return False


def _labelled_as_tuple(pred: Value, gold: Value) -> Verdict | None:
    """``x = 2, y = 3`` against ``(2, 3)``: values that all carry labels read in order as a tuple (else None)."""
    items, sequence = (pred, gold) if isinstance(pred, Items) else (gold, pred)
    if not (isinstance(items, Items) and isinstance(sequence, Seq)) or not all(items.labels):
        return None
    if (sequence.left, sequence.right) != ("(", ")") or len(sequence.items) != len(items.items):
        return False
    return _all([values_equal(p, g) for p, g in zip(items.items, sequence.items, strict=True)])


def _same_set(pred: tuple[Value, ...], gold: tuple[Value, ...]) -> Verdict:
    """Set equality: a repeated solution does not make a list of solutions wrong."""
    verdicts: list[Verdict] = []
    for items, others in ((gold, pred), (pred, gold)):
        for item in items:
            found: Verdict = False
            for other in others:
                verdict = values_equal(other, item)
                if verdict:
                    found = True
                    break
                if verdict is None:
                    found = None
            verdicts.append(found)
    return _all(verdicts)
