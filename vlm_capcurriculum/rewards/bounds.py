"""Every limit and tolerance of the reward, in one place.

Sizes: a 2048-token response (the paper's length) is about 10k characters; the bounds leave a wide margin for honest
output. What exceeds one scores 0 and is counted (``oversize`` in ``guard_stats()``), never truncated into another
answer. The float tolerances only apply to values floats alone can compute (roots, pi, functions, variables).
"""

from __future__ import annotations

# ---------------------------------------------------------------- sizes of what is read

#: Responses longer than this get accuracy 0 without being parsed (format is still checked on them: it is linear).
MAX_RESPONSE_CHARS = 100_000
#: Extracted answers longer than this are compared only as exact strings, never parsed.
MAX_ANSWER_CHARS = 1_000
#: The deepest nesting (brackets, operators, list levels) any parser follows: recursion must not exhaust the stack.
MAX_NESTING = 50
#: The most digits a numeral may have to be parsed exactly in-process (beyond it, only string equality).
MAX_DIGITS = 400
#: The largest |exponent| of 10 (``1e300``, ``2 \\times 10^{300}``) or power (``2^{300}``) evaluated in-process.
MAX_EXPONENT_DIGITS = 400
#: Exact rational values are computed only while they stay below this many digits (numerator or denominator).
MAX_EXACT_DIGITS = 2_000
#: The largest n whose n! is computed exactly, and the largest a float holds.
MAX_EXACT_FACTORIAL, MAX_FLOAT_FACTORIAL = 500, 170
#: The largest q whose q-th root is taken exactly (``4^{1/2}`` is 2).
MAX_EXACT_ROOT = 64
#: A float power with an exponent beyond this overflows or underflows: decided at once, never computed.
MAX_FLOAT_EXPONENT = 1e6
#: Expressions in more variables than this are left to the symbolic path.
MAX_VARIABLES = 6

# ---------------------------------------------------------------- extraction windows

#: How much of the answer region's end the math fallback scans (the answer sits at the end; keeps scans linear).
FALLBACK_TAIL_CHARS = 3000
#: A phrase tail ("The answer is ...") longer than this is cut: an answer is a short span.
PHRASE_TAIL_CHARS = 300
#: A region up to this long is taken whole as a short-type answer ("B", "Yes, there is.", "three apples").
SHORT_REGION_CHARS = 200

# ---------------------------------------------------------------- float tolerances (relative)

#: Floats are equal within FLOAT_EQUAL relative to the larger, different beyond FLOAT_DIFFERENT, else undecided (the
#: symbolic path decides). No absolute floor: 10^{-12} and 10^{-10} are different numbers.
FLOAT_EQUAL, FLOAT_DIFFERENT = 1e-11, 1e-9
#: An imaginary part this small relative to the real part is rounding: the value is real.
REAL_TOLERANCE = 1e-12
#: Rounding may leave a residue of this much times the largest operand of a sum or function argument
#: (``\\cos(\\pi/2)`` is 6e-17, not 0); as a share of the largest operand, when a relation's side counts as zero.
RESIDUE, ZERO_RESIDUE = 1e-4, 1e-12
#: A decimal of at most this many significant digits may equal a constant that only floats can evaluate
#: (``0.5`` is ``\\sin(\\pi/6)``), when within DECIMAL_CONSTANT_TOLERANCE of it.
SHORT_DECIMAL_DIGITS, DECIMAL_CONSTANT_TOLERANCE = 10, 1e-13

# ---------------------------------------------------------------- the symbolic path (guard worker)

#: Decimal places Math-Verify rounds floats to (its default 6 would make ``0.333333`` equal ``1/3``).
FLOAT_ROUNDING = 12
#: Parsed trees whose value could need more than this many digits (either way: 10^{-10^{10}} too) are not simplified.
MAX_LOG10 = 2_000
#: Trees with more nodes than this are not simplified (a 1000-character answer has far fewer).
MAX_NODES = 5_000
#: Sums and products over more terms than this are not evaluated (sympy may expand them term by term).
MAX_TERMS = 10_000
#: Binomials and factorials of numerals with more digits than this are rejected before parsing (latex2sympy
#: evaluates them while it parses).
MAX_FACTORIAL_DIGITS = 4
#: Per-answer limit in seconds (the paper's unused helper: 1 s). Honest answers take tens of ms, the slowest in
#: benchmarks/cases about 0.5 s on one core: 2 s leaves room for a loaded machine, not for a runaway answer.
DEFAULT_TIMEOUT_S = 2.0
#: How long a fresh worker may take to import sympy and Math-Verify before it is given up on.
BOOT_TIMEOUT_S = 120.0
#: Guard workers per process at most, by default (reward actors share the node; ``VLMCC_REWARD_WORKERS`` overrides).
MAX_WORKERS = 4
#: A worker's own limits, so that even an orphan cannot run away: address space in MB and CPU seconds per task
#: (``VLMCC_GUARD_MEMORY_MB`` and ``VLMCC_GUARD_TASK_CPU_S`` override them).
WORKER_MEMORY_MB, WORKER_TASK_CPU_S = 4096, 60.0

# ---------------------------------------------------------------- memory

#: Entries of each parse and verdict cache (texts are short: a few MB at most).
CACHE_SIZE = 16_384
#: Texts up to this long are cached by the LaTeX clean-up (answers; not whole responses).
CACHED_TEXT_CHARS = 2_000
