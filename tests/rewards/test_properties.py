"""Properties that hold for any text a model may write (hypothesis)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlm_capcurriculum.rewards import extract_answer, format_score, score_batch, verify_batch
from vlm_capcurriculum.rewards.latex import clean
from vlm_capcurriculum.rewards.verifiers.math import verify_math_exact

TOKENS = [*"0123456789+-*/^_=<>()[]{},.;:!|$%' xyzabcABCe\\\n", "\\frac", "\\sqrt", "\\pi", "\\boxed{", "\\left(",
          "\\right)", "\\text{", "\\cdot", "\\le", "\\pm", "\\infty", "<think>", "</think>", "\\{", "\\}", "^{",
          "\\circ", "\\%", "\\cup", "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", " and ", "Option ", "yes"]  # fmt: skip
LATEXISH = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
GOLDS = st.sampled_from(["3", "B", "\\frac{1}{2}", "x^2", "(1, 2)", '{"answer": "yes", "type": "yesno"}',
                         '{"answer": "red", "type": "text"}', '{"answer": "3", "type": "number"}', "[0, 1)"])  # fmt: skip
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(responses=st.lists(st.one_of(LATEXISH, st.text(max_size=80)), min_size=1, max_size=8), gold=GOLDS)
def test_score_never_raises_and_stays_in_range(responses: list[str], gold: str) -> None:
    for result in score_batch(responses, [gold] * len(responses), timeout_s=2.0):
        assert {"overall", "accuracy", "format"} <= set(result)
        assert all(0.0 <= value <= 1.0 for value in result.values())
        assert result["accuracy"] in (0.0, 1.0) and result["format"] in (0.0, 1.0)


@FAST
@given(text=st.one_of(LATEXISH, st.text(max_size=80)))
def test_pieces_never_raise(text: str) -> None:
    extract_answer(text)
    format_score(text)
    assert clean(clean(text)) == clean(text)
    assert verify_math_exact(text, text) in (True, None) or not clean(text)


@settings(max_examples=100, deadline=None)
@given(value=st.fractions(min_value=-1000, max_value=1000, max_denominator=50))
def test_a_number_equals_itself_in_other_spellings(value) -> None:
    fraction = f"\\frac{{{value.numerator}}}{{{value.denominator}}}"
    decimal = f"{float(value):.10f}"
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    terminating = denominator == 1  # then 10 places write it exactly; else the decimal is an approximation
    assert verify_batch([fraction, decimal, str(value)], [str(value)] * 3) == [True, terminating, True]
