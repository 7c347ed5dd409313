"""A small, bounded LaTeX expression parser and a numeric equivalence test: the fast path for roots, pi, powers,
trigonometry and polynomials in a few variables.

Why not sympy here: Math-Verify's ANTLR parse costs tens of milliseconds per answer and simplification can run away;
this is one pass over a bounded text (:mod:`~vlm_capcurriculum.rewards.bounds`), evaluated in floating-point complex
arithmetic, where an enormous number is an ``OverflowError`` at once. Nothing is ever evaluated as code.

:func:`compare`: rational constants compare exactly, a decimal never equals an irrational, other constants compare
in floats relative to their size (no absolute floor: ``10^{-12}`` is not ``10^{-10}``); expressions with variables
are evaluated at fixed points with negative and positive values (so ``|x|`` is not ``x``), and relations compare as
proportional (``y = -x/2 + 3/4`` is ``2x + 4y - 3 = 0``). Outside the grammar, for the symbolic path: multi-letter
names (``xy``, ``cm``), ``\\sin 2x``, chained inequalities, sums, integrals, limits, sets.
"""

from __future__ import annotations

import cmath
import math
import operator
import re
from dataclasses import dataclass
from fractions import Fraction

from vlm_capcurriculum.rewards.bounds import (
    DECIMAL_CONSTANT_TOLERANCE,
    FLOAT_DIFFERENT,
    FLOAT_EQUAL,
    MAX_DIGITS,
    MAX_EXACT_DIGITS,
    MAX_EXACT_FACTORIAL,
    MAX_EXACT_ROOT,
    MAX_FLOAT_EXPONENT,
    MAX_FLOAT_FACTORIAL,
    MAX_NESTING,
    MAX_VARIABLES,
    REAL_TOLERANCE,
    RESIDUE,
    SHORT_DECIMAL_DIGITS,
    ZERO_RESIDUE,
)
from vlm_capcurriculum.rewards.brackets import top_level
from vlm_capcurriculum.rewards.value import Node, Op, Quantity, is_relation

_GREEK = frozenset(
    ["alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta", "iota", "kappa",
     "lambda", "mu", "nu", "xi", "rho", "sigma", "tau", "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma",
     "Delta", "Theta", "Lambda", "Xi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"]
)  # fmt: skip
_FUNCTIONS = frozenset(
    ["sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "ln", "log", "exp"]
)  # fmt: skip
_BARE_FUNCTIONS = _FUNCTIONS | {"sqrt"}
_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d*)?|\.\d+)|\\(?P<cmd>[A-Za-z]+)|(?P<word>[A-Za-z]+)|(?P<sym>[-+*/^_()\[\]{}|!=,']))"
)


class Unsupported(Exception):
    """The text is outside this grammar; the symbolic path decides."""


@dataclass(frozen=True)
class Token:
    kind: str  # num, cmd, word, sym, end
    text: str


def tokenize(text: str) -> list[Token]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise Unsupported(f"unexpected character at {position}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group(kind)
        if kind == "word":
            if len(value) > 1 and value not in _BARE_FUNCTIONS and value != "pi":
                raise Unsupported("multi-letter name")  # a product, a unit or a word: not ours to guess
            if len(value) > 1:
                kind = "cmd"
        tokens.append(Token(kind, value))
        position = match.end()
    tokens.append(Token("end", ""))
    return tokens


_CONSTANTS = {"pi": complex(math.pi), "e": complex(math.e), "i": 1j}  # i as in Math-Verify: e^{i\pi} is -1
_CLOSER = {"(": ")", "{": "}", "[": "]"}
_PRODUCTS = ("cdot", "times", "div")


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0
        self.depth = 0

    def peek(self) -> Token:
        return self.tokens[min(self.position, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text or token.kind != "sym":
            raise Unsupported(f"expected {text!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise Unsupported("nested too deep")

    def parse(self) -> Node:
        node = self.expression()
        if self.peek().kind != "end":
            raise Unsupported("trailing input")
        return node

    def expression(self) -> Node:
        self.enter()
        node = self.term()
        while self.peek().kind == "sym" and self.peek().text in "+-":
            operator = self.take().text
            right = self.term()
            node = Op("add" if operator == "+" else "sub", (node, right))
        self.depth -= 1
        return node

    def term(self) -> Node:
        node = self.signed()
        while True:
            token = self.peek()
            if (token.kind == "sym" and token.text in "*/") or (token.kind == "cmd" and token.text in _PRODUCTS):
                self.take()
                right = self.signed()
                if token.text == "/" and self.starts_primary(self.peek()):
                    raise Unsupported("ambiguous division")  # 1/2x: (1/2)x or 1/(2x)?
                node = Op("div" if token.text in ("/", "div") else "mul", (node, right))
            elif self.starts_primary(token):
                node = Op("mul", (node, self.power()))
            else:
                return node

    def starts_primary(self, token: Token) -> bool:
        if token.kind in ("num", "word"):
            return True
        if token.kind == "sym":
            return token.text in "({["
        if token.kind == "cmd":
            return token.text not in _PRODUCTS
        return False

    def signed(self) -> Node:
        token = self.peek()
        if token.kind == "sym" and token.text in "+-":
            self.take()
            self.enter()
            operand = self.signed()
            self.depth -= 1
            return Op("neg", (operand,)) if token.text == "-" else operand
        return self.power()

    def power(self) -> Node:
        node = self.postfix(self.primary())
        if self.peek().kind == "sym" and self.peek().text == "^":
            self.take()
            exponent = self.script()
            node = Op("pow", (node, exponent))
            if self.peek().kind == "sym" and self.peek().text == "^":
                raise Unsupported("double superscript")
            node = self.postfix(node)
        return node

    def postfix(self, node: Node) -> Node:
        while self.peek().kind == "sym" and self.peek().text == "!":
            self.take()
            node = Op("fact", (node,))
        return node

    def script(self) -> Node:
        """A superscript or an argument in TeX's sense: a braced group or one token."""
        token = self.peek()
        if token.kind == "sym" and token.text == "{":
            return self.group("{", "}")
        if token.kind == "num":
            self.take()
            digits = token.text
            if len(digits) > 1:  # x^23 is x^{2}3 in TeX: keep the first digit, give back the rest
                self.tokens.insert(self.position, Token("num", digits[1:]))
                digits = digits[0]
            return _numeral_node(digits)
        if token.kind == "sym" and token.text in "+-":
            raise Unsupported("signed bare superscript")
        return self.primary()

    def group(self, left: str, right: str) -> Node:
        self.expect(left)
        self.enter()
        node = self.expression()
        self.depth -= 1
        self.expect(right)
        return node

    def primary(self) -> Node:
        token = self.peek()
        if token.kind == "num":
            self.take()
            return _numeral_node(token.text)
        if token.kind == "word":
            self.take()
            return self.variable(token.text)
        if token.kind == "sym":
            if token.text in _CLOSER:
                return self.group(token.text, _CLOSER[token.text])
            if token.text == "|":
                return Op("abs", (self.group("|", "|"),))
            raise Unsupported(f"unexpected {token.text!r}")
        if token.kind == "cmd":
            return self.command()
        raise Unsupported("unexpected end")

    def variable(self, name: str) -> Node:
        while self.peek().kind == "sym" and self.peek().text == "'":
            self.take()
            name += "'"
        if self.peek().kind == "sym" and self.peek().text == "_":
            self.take()
            token = self.take()
            if token.kind == "sym" and token.text == "{":
                parts = []
                while not (self.peek().kind == "sym" and self.peek().text == "}"):
                    part = self.take()
                    if part.kind not in ("num", "word") or len(parts) > 8:
                        raise Unsupported("complex subscript")
                    parts.append(part.text)
                self.take()
                name += "_" + "".join(parts)
            elif token.kind in ("num", "word"):
                name += "_" + token.text[0]
                if len(token.text) > 1:
                    self.tokens.insert(self.position, Token(token.kind, token.text[1:]))
            else:
                raise Unsupported("bad subscript")
        if name in ("e", "i"):
            return Op("const", (name,))
        return Op("var", (name,))

    def command(self) -> Node:
        name = self.take().text
        if name == "pi":
            return Op("const", (name,))
        if name in _GREEK:
            return self.variable("\\" + name)
        if name == "frac":
            numerator = self.script()
            denominator = self.script()
            return Op("div", (numerator, denominator))
        if name == "sqrt":
            if self.peek().kind == "sym" and self.peek().text == "[":
                index = self.group("[", "]")
                return Op("root", (index, self.script()))
            return Op("root", (Quantity(Fraction(2)), self.script()))
        if name in _FUNCTIONS:
            return self.function(name)
        raise Unsupported(f"command \\{name}")

    def function(self, name: str) -> Node:
        base: Node | None = None
        if name == "log" and self.peek().kind == "sym" and self.peek().text == "_":
            self.take()
            base = self.script()
        exponent: Node | None = None
        if self.peek().kind == "sym" and self.peek().text == "^":
            self.take()
            exponent = self.script()  # \sin^2 x is (\sin x)^2
        token = self.peek()
        if token.kind == "sym" and token.text in "({":
            argument = self.group(token.text, _CLOSER[token.text])
        else:
            argument = self.postfix(self.primary())
            if self.starts_primary(self.peek()) or (self.peek().kind == "sym" and self.peek().text == "^"):
                raise Unsupported("ambiguous function argument")  # \sin 2x: sin(2x) or sin(2)x?
        node: Node = Op("log", (base, argument)) if base is not None else Op("fn", (name, argument))
        if exponent is not None:
            node = Op("pow", (node, exponent))
        return node


def _numeral_node(text: str) -> Quantity:
    """A numeral, exactly; a decimal numeral is marked, for the decimal rule of :func:`compare`."""
    if len(text) > MAX_DIGITS:
        raise Unsupported("numeral too long")
    return Quantity(Fraction(text), decimal="." in text)


_RELATION = re.compile(r"\\(?:leq?|geq?|lt|gt|neq?)(?![A-Za-z])|<=|>=|!=|=|<|>")
_RELATION_NAMES = {
    "\\le": "<=",
    "\\leq": "<=",
    "\\ge": ">=",
    "\\geq": ">=",
    "\\lt": "<",
    "\\gt": ">",
    "\\ne": "!=",
    "\\neq": "!=",
}
_FLIPPED = {"<": ">", "<=": ">="}


def parse_expression(text: str) -> Node:
    """Parse a cleaned LaTeX expression, or one relation ``lhs op rhs`` (op: = < > <= >= !=, also as ``\\le``
    etc.), into an AST; raises :class:`Unsupported` outside the grammar (chains like ``0 < x < 1`` included)."""
    pieces, operators = split_relations(text)
    if not operators:
        return _Parser(text).parse()
    if len(operators) > 1:
        raise Unsupported("chained relation")
    operator = operators[0]
    left, right = _Parser(pieces[0]).parse(), _Parser(pieces[1]).parse()
    if operator in _FLIPPED:  # a < b is b > a: one orientation per relation
        operator, left, right = _FLIPPED[operator], right, left
    return Op("rel", (operator, left, right))


def split_relations(text: str) -> tuple[list[str], list[str]]:
    """The top-level relation operators of ``text`` (normalised: ``<``, ``<=``, ``>``, ``>=``, ``=``, ``!=``) and
    the pieces between them: ``-2 \\le x < 7`` gives ``(["-2 ", " x ", " 7"], ["<=", "<"])``."""
    matches = list(_RELATION.finditer(text))
    top = {i for i, _ in top_level(text)} if matches else set()
    pieces, operators, start = [], [], 0
    for match in matches:
        if match.start() in top:
            pieces.append(text[start : match.start()])
            operators.append(_RELATION_NAMES.get(match.group(), match.group()))
            start = match.end()
    pieces.append(text[start:])
    return pieces, operators


def _operations(node: Node) -> list[Op]:
    """Every operation in ``node`` (its numerals left out)."""
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Op):
            found.append(item)
            stack.extend(child for child in item.args if isinstance(child, (Op, Quantity)))
    return found


def variables(node: Node) -> set[str]:
    return {op.args[0] for op in _operations(node) if op.kind == "var"}


_FUNCTION_VALUES = {name: getattr(cmath, name.replace("arc", "a")) for name in _FUNCTIONS - {"sec", "csc", "cot", "ln"}}
_FUNCTION_VALUES |= {
    "sec": lambda z: 1 / cmath.cos(z),
    "csc": lambda z: 1 / cmath.sin(z),
    "cot": lambda z: 1 / cmath.tan(z),
    "ln": cmath.log,
}
_ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv}


def evaluate(node: Node, point: dict[str, complex], scale: list[float] | None = None) -> complex:
    """The value of ``node`` at ``point``; raises ArithmeticError/ValueError where it is undefined, huge or too small
    for a float. ``scale``, when given, collects the magnitudes whose rounding can leave a residue in the result
    (operands of sums and differences, arguments of functions): ``\\cos(\\pi/2)`` is 6e-17, not 0."""
    if isinstance(node, Quantity):
        return complex(node.value)  # type: ignore[arg-type]
    kind, args = node.kind, node.args
    if kind == "const":
        return _CONSTANTS[args[0]]
    if kind == "var":
        return point[args[0]]
    if kind == "neg":
        return -evaluate(args[0], point, scale)
    if kind == "fact":
        value = evaluate(args[0], point, scale)
        if (
            abs(value.imag) > REAL_TOLERANCE
            or value.real < 0
            or value.real > MAX_FLOAT_FACTORIAL
            or value.real != int(value.real)
        ):
            raise ValueError("factorial outside what a float holds")
        return complex(math.factorial(int(value.real)))
    if kind == "abs":
        return complex(abs(evaluate(args[0], point, scale)))
    if kind == "fn":
        argument = evaluate(args[1], point, scale)
        if scale is not None:
            scale.append(abs(argument))
        return _finite(_FUNCTION_VALUES[args[0]](argument))
    if kind == "log":
        argument, base = evaluate(args[1], point, scale), evaluate(args[0], point, scale)
        if scale is not None:
            scale.extend((abs(argument), abs(base)))
        return _finite(cmath.log(argument) / cmath.log(base))
    left = evaluate(args[0], point, scale)
    right = evaluate(args[1], point, scale)
    if kind in ("add", "sub") and scale is not None:
        scale.extend((abs(left), abs(right)))
    if kind in _ARITHMETIC:
        result = _ARITHMETIC[kind](left, right)
        if kind in ("mul", "div") and result == 0 and left != 0 and right != 0:
            raise OverflowError("underflow")
    elif kind == "pow":
        result = _power(left, right)
    elif kind == "root":
        result = _root(right, left)
    else:  # a relation is compared by compare(), never evaluated
        raise ValueError(f"cannot evaluate {kind}")
    return _finite(result)


def _finite(value: complex) -> complex:
    if not cmath.isfinite(value):
        raise OverflowError("not finite")
    return value


def _power(base: complex, exponent: complex) -> complex:
    if abs(exponent) > MAX_FLOAT_EXPONENT and abs(base) not in (0.0, 1.0):
        raise OverflowError("exponent too large")
    if base.imag == 0 and exponent.imag == 0 and (base.real >= 0 or exponent.real == int(exponent.real)):
        result = complex(math.pow(base.real, exponent.real))  # stay real: (-2)^3 is -8, not -8+1e-15i
    else:
        result = base**exponent
    if result == 0 and base != 0:
        raise OverflowError("underflow")  # 10^{-1000} is not 0
    return result


def _root(radicand: complex, index: complex) -> complex:
    """Principal root, except that an odd root of a negative real is the real root (``\\sqrt[3]{-8}`` is -2)."""
    if radicand.imag == 0 and index.imag == 0 and index.real == int(index.real) and int(index.real) % 2 == 1:
        magnitude = abs(radicand.real) ** (1 / index.real)
        return complex(math.copysign(magnitude, radicand.real))
    if index == 0:
        raise ZeroDivisionError("zeroth root")
    return _power(radicand, 1 / index)


class _NotExact(Exception):
    pass


def exact_value(node: Node) -> Fraction | None:
    """The exact value of a rational constant, or None (variables, pi, ``\\sqrt{2}``, too many digits)."""
    try:
        return _exact(node)
    except (_NotExact, ZeroDivisionError, OverflowError, ValueError):
        return None


def _digits(value: Fraction) -> int:
    return max(value.numerator.bit_length(), value.denominator.bit_length()) * 0.30103  # type: ignore[return-value]


def _exact(node: Node) -> Fraction:
    if isinstance(node, Quantity):
        return node.value  # type: ignore[return-value]
    kind, args = node.kind, node.args
    if kind == "neg":
        return -_exact(args[0])
    if kind == "abs":
        return abs(_exact(args[0]))
    if kind in _ARITHMETIC:
        result = _ARITHMETIC[kind](_exact(args[0]), _exact(args[1]))
        if _digits(result) > MAX_EXACT_DIGITS:
            raise _NotExact
        return result
    if kind == "pow":
        return _exact_power(_exact(args[0]), _exact(args[1]))
    if kind == "root":
        index = _exact(args[0])
        if index == 0:
            raise _NotExact
        return _exact_power(_exact(args[1]), 1 / index)
    if kind == "fact":
        value = _exact(args[0])
        if value.denominator != 1 or not 0 <= value <= MAX_EXACT_FACTORIAL:
            raise _NotExact
        return Fraction(math.factorial(int(value)))
    raise _NotExact


def _exact_power(base: Fraction, exponent: Fraction) -> Fraction:
    """``base ** exponent`` when it is rational and small enough to write down (a q-th root is taken only when
    exact: 4^{1/2} is 2, 2^{1/2} is not rational)."""
    if base == 0:
        if exponent <= 0:
            raise _NotExact
        return Fraction(0)
    p, q = exponent.numerator, exponent.denominator
    if abs(p) * max(_digits(base), 1) > MAX_EXACT_DIGITS or q > MAX_EXACT_ROOT:
        raise _NotExact
    if q > 1:
        if base < 0:
            if q % 2 == 0:
                raise _NotExact  # not real
            return -_exact_power(-base, exponent)
        base = Fraction(_exact_root(base.numerator, q), _exact_root(base.denominator, q))
    return base**p


def _exact_root(n: int, q: int) -> int:
    root = round(n ** (1 / q)) if n.bit_length() < 1000 else None
    if root is None:
        raise _NotExact
    for candidate in (root - 1, root, root + 1):
        if candidate >= 0 and candidate**q == n:
            return candidate
    raise _NotExact


def has_decimal(node: Node) -> bool:
    if isinstance(node, Quantity):
        return node.decimal
    return any(isinstance(arg, Quantity) and arg.decimal for op in _operations(node) for arg in op.args)


#: Evaluation points: every variable takes negative, small, and larger positive values across the points (so |x|,
#: \sqrt{x^2} and x/|x| differ from x, and |x-3| from 3-x), the same on both sides and on every run.
_POINT_VALUES = (-2.6131, 0.7312, 3.4189, -0.3871, 1.9047, 4.6631, -1.1583, 2.5527)
_POINTS = 6


def _points(names: set[str]) -> list[dict[str, complex]]:
    ordered = sorted(names)
    points = []
    for offset in range(_POINTS):
        point = {}
        for index, name in enumerate(ordered):
            point[name] = complex(_POINT_VALUES[(index * 3 + offset * 5) % len(_POINT_VALUES)] + 0.05 * index)
        points.append(point)
    return points


def _difference(a: complex, b: complex, residue: float) -> float:
    """How far apart a and b are, relative to their size (and to the rounding residue of their computation)."""
    size = max(abs(a), abs(b), residue)
    return 0.0 if a == b else abs(a - b) / size if size else math.inf


def _is_real(value: complex) -> bool:
    return abs(value.imag) <= REAL_TOLERANCE * max(1.0, abs(value.real))


def compare(pred: Node, gold: Node) -> bool | None:
    """Equality of two expressions (rules in the module docstring): True, False, or None when undecided. A point
    where exactly one side is not real (outside its real domain: ``2\\ln x`` at x < 0) is skipped."""
    if is_relation(pred) or is_relation(gold):
        if not (is_relation(pred) and is_relation(gold)) or pred.args[0] != gold.args[0]:  # type: ignore[union-attr]
            return False  # an equation is not a number; x >= 5 is not x > 5
        return _compare_relations(pred, gold)  # type: ignore[arg-type]
    names = variables(pred) | variables(gold)
    if len(names) > MAX_VARIABLES:
        return None
    if not names:
        exact_pred, exact_gold = exact_value(pred), exact_value(gold)
        if exact_pred is not None and exact_gold is not None:
            return exact_pred == exact_gold
        for exact, node, other in ((exact_pred, pred, gold), (exact_gold, gold, pred)):
            if exact is not None and has_decimal(node):
                return _decimal_against_constant(exact, other)
    equal_points = 0
    for point in _points(names):
        scale: list[float] = []
        try:
            p, g = evaluate(pred, point, scale), evaluate(gold, point, scale)
        except (ArithmeticError, ValueError, KeyError):
            continue
        if names and _is_real(p) != _is_real(g):
            continue
        difference = _difference(p, g, max(scale, default=0.0) * RESIDUE)
        if difference <= FLOAT_EQUAL:
            equal_points += 1
        elif difference > FLOAT_DIFFERENT:
            return False
        else:
            return None
        if not names:
            break  # a constant needs one evaluation
    if equal_points == 0 or (names and equal_points < 3):
        return None
    return True


def _decimal_against_constant(decimal: Fraction, other: Node) -> bool | None:
    """A decimal is the rational it writes: ``0.5`` is ``\\sin(\\pi/6)`` (a short decimal cannot be that close to an
    irrational by chance), ``1.41421356`` is not ``\\sqrt{2}``."""
    try:
        value = evaluate(other, {})
    except (ArithmeticError, ValueError, KeyError):
        return None
    digits = len(str(abs(decimal.numerator * 10 ** _decimal_places(decimal) // decimal.denominator)).strip("0"))
    return digits <= SHORT_DECIMAL_DIGITS and _difference(complex(decimal), value, 0.0) <= DECIMAL_CONSTANT_TOLERANCE


def _decimal_places(value: Fraction) -> int:
    for places in range(41):
        if (value * 10**places).denominator == 1:
            return places
    return 40


def _compare_relations(pred: Op, gold: Op) -> bool | None:
    """Same relation when ``lhs - rhs`` of one is a constant multiple of the other's (a positive one for
    inequalities, whose direction it must keep)."""
    names = variables(pred) | variables(gold)
    if len(names) > MAX_VARIABLES:
        return None
    ratio: complex | None = None
    agreeing = 0
    for point in _points(names):
        scale: list[float] = []
        try:
            p = evaluate(pred.args[1], point, scale) - evaluate(pred.args[2], point, scale)
            g = evaluate(gold.args[1], point, scale) - evaluate(gold.args[2], point, scale)
        except (ArithmeticError, ValueError, KeyError):
            continue
        residue = max(scale, default=0.0) * ZERO_RESIDUE
        if abs(p) <= residue and abs(g) <= residue:
            agreeing += 1
            continue
        if abs(p) <= residue or abs(g) <= residue:
            return None
        current = p / g
        if ratio is None:
            ratio = current
        elif _difference(current, ratio, 0.0) > FLOAT_EQUAL:
            return False if _difference(current, ratio, 0.0) > FLOAT_DIFFERENT else None
        agreeing += 1
    if agreeing < 2 and names:
        return None
    if ratio is not None and pred.args[0] in (">", ">=") and not (abs(ratio.imag) < REAL_TOLERANCE and ratio.real > 0):
        return False
    return True if agreeing else None
