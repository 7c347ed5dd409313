from __future__ import annotations

import re

import pytest

from vlm_capcurriculum.rewards.format import format_ok, format_score

# The paper's check (training/reward_functions/math.py, from EasyR1's example), for comparison.
_PAPER = re.compile(r"<think>.*</think>.*\\boxed\{.*\}.*", re.DOTALL)


def paper_format(response: str) -> bool:
    return bool(_PAPER.fullmatch(re.sub(r"\s*(<|>|/)\s*", r"\1", response)))


@pytest.mark.parametrize(
    "response",
    [
        "<think>reasoning</think> \\boxed{3}",
        "<think>\nreasoning\n</think>\n\nThe answer is \\boxed{\\frac{1}{2}}.",
        "  <think>r</think>\\boxed{A}",
        "< think >r< /think >\\boxed{A}",  # Qwen2.5-VL-32B spacing, as the paper normalises it
        "<think></think>\\boxed{A}",  # empty reasoning, as the paper's regex allows
    ],
)
def test_paper_format_accepted(response: str) -> None:
    assert format_ok(response)
    assert format_score(response) == 1.0
    assert paper_format(response)


@pytest.mark.parametrize(
    "response",
    [
        "\\boxed{3}",  # no reasoning block
        "<think>r \\boxed{3}",  # reasoning never closed
        "<think>r</think> 3",  # no box
        "<think>r \\boxed{3}</think>",  # the box is inside the reasoning
        "preamble <think>r</think>\\boxed{3}",  # does not start with the reasoning
        "<think>r</think>\\boxed{}",  # empty answer
    ],
)
def test_malformed_rejected(response: str) -> None:
    assert not format_ok(response)
    assert format_score(response) == 0.0


@pytest.mark.parametrize(
    ("response", "ours"),
    [
        ("<think>a</think><think>b</think>\\boxed{3}", False),  # two reasoning blocks
        ("<think>r</think>\\boxed{3 \\}", False),  # the paper's regex takes an escaped brace for the end
        ("<think>r</think>\\boxed{}", False),  # no answer in the box
        ("<think>r</think>\\boxed{3}{", True),  # trailing text after a balanced box is the paper's ".*"
    ],
)
def test_closes_the_paper_regex_loopholes(response: str, ours: bool) -> None:
    assert paper_format(response)
    assert format_ok(response) is ours


def test_fbox_counts_as_a_box() -> None:
    assert format_ok("<think>r</think>\\fbox{A}")
