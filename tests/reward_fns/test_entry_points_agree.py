"""The verl entry point and the EasyR1 file give every sample the same verdict, with default settings.

The probes are held-out variants of each class of wrong credit and wrong refusal the red team found (issue 13),
written as rules, not as the reported instances: missing boxes, tiny and huge magnitudes, decimals against exact
values, expressions that differ at negative points, bounds against numbers, contradictory yes/no, options past J,
vulgar fractions, complex units, and ground truths of every encoding (numbers, lists, None, NaN, malformed JSON).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from vlm_capcurriculum.integrations.verl.reward import compute_score as verl_compute_score
from vlm_capcurriculum.rewards import guard_stats


def box(answer: str) -> str:
    return f"<think>\nworking it out\n</think>\n\n\\boxed{{{answer}}}"


def typed(answer: str, answer_type: str, **extra: object) -> str:
    return json.dumps({"answer": answer, "type": answer_type, **extra})


MANY = {letter: f"option {letter.lower()}" for letter in "ABCDEFGHIJKLMNOP"}

# (response, ground truth, expected accuracy)
PROBES: list[tuple[str, object, float]] = [
    # 1. the paper's extraction: no box, no accuracy; the last box answers, for every type
    ("Therefore the final answer is 42.", "42", 0.0),
    ("<think>x</think> Answer: $42$", "42", 0.0),
    ("<think>x</think> <answer>42</answer>", "42", 0.0),
    ("<think>x</think> \\boxed{42", "42", 0.0),
    ("<think>x</think> \\boxed{42}", "42", 1.0),
    ("<think>x</think> \\boxed{D} hmm, no: \\boxed{A}", "A", 1.0),
    ("<think>x</think> \\boxed{A} hmm, no: \\boxed{D}", "A", 0.0),
    ("<think>x</think> \\boxed{no} wait \\boxed{yes}", typed("yes", "yesno"), 1.0),
    ("<think>truncated \\boxed{42}", "42", 0.0),
    # 2. unequal numbers: small and large magnitudes, decimals, exact forms
    (box("10^{-15}"), "10^{-14}", 0.0),
    (box("3\\times10^{-21}"), "3\\times10^{-20}", 0.0),
    (box("0.00000001"), "0", 0.0),
    (box("10^{-500000}"), "0", 0.0),
    (box("\\frac{1}{3^{60}}"), "\\frac{1}{3^{61}}", 0.0),
    (box("3^{80}-1"), "3^{80}", 0.0),
    (box("2.00000001"), "2", 0.0),
    (box("123456789012345678"), "123456789012345679", 0.0),
    (box("1.7320508"), "\\sqrt{3}", 0.0),
    (box("3.14159265"), "\\pi", 0.0),
    (box("0.25"), "\\frac{1}{4}", 1.0),
    (box("2\\sqrt{3}"), "\\sqrt{12}", 1.0),
    (box("\\frac{\\sqrt{2}}{2}"), "\\frac{1}{\\sqrt{2}}", 1.0),
    (box("0.5"), "\\sin\\frac{\\pi}{6}", 1.0),
    (box("10^{-12}"), "10^{-12}", 1.0),
    (box("\\frac{1}{2^{50}}"), "2^{-50}", 1.0),
    # expressions that agree only for positive values
    (box("|y|"), "y", 0.0),
    (box("|t+2|"), "t+2", 0.0),
    (box("|a-4|"), "4-a", 0.0),
    (box("\\sqrt{b^2}"), "b", 0.0),
    (box("\\frac{|z|}{z}"), "1", 0.0),
    (box("\\sqrt{(x-1)^2}"), "x-1", 0.0),
    (box("(x-1)^2"), "x^2-2x+1", 1.0),
    (box("\\sqrt{x^2}"), "|x|", 1.0),
    # bounds are not the number; contradictory yes/no is no answer
    (box("at least 7"), "7", 0.0),
    (box("more than 7"), "7", 0.0),
    (box("7 or more"), "7", 0.0),
    (box("at least 7"), typed("7", "number"), 0.0),
    (box("fewer than 7"), typed("7", "number"), 0.0),
    (box("seven"), typed("7", "number"), 1.0),
    (box("Yes. No."), typed("no", "yesno"), 0.0),
    (box("No, yes"), typed("yes", "yesno"), 0.0),
    (box("not yes"), typed("yes", "yesno"), 0.0),
    (box("True. False."), typed("true", "yesno"), 0.0),
    (box("Yes, there are no clouds."), typed("yes", "yesno"), 1.0),
    # 3. right answers refused before
    (box("M"), typed("M", "choice", choices=MANY), 1.0),
    (box("(P) option p"), typed("P", "choice", choices=MANY), 1.0),
    (box("K"), typed("M", "choice", choices=MANY), 0.0),
    (box("⅔"), "\\frac{2}{3}", 1.0),
    (box("¾"), "0.75", 1.0),
    (box("1½"), "\\frac{3}{2}", 1.0),
    (box("e^{i\\pi}+1"), "0", 1.0),
    (box("i^2"), "-1", 1.0),
    # 4. ground truths of every encoding
    (box("None"), None, 0.0),
    (box("nan"), math.nan, 0.0),
    (box("7"), 7, 1.0),
    (box("7"), 7.0, 1.0),
    (box("0.75"), 0.75, 1.0),
    (box("3, 4"), [3, 4], 1.0),
    (box("3, 5"), [3, 4], 0.0),
    (box("2"), '{"answer": "2",}', 0.0),
    (box("2"), '{"answer": "2", "type": "number"', 0.0),
    (box("2"), '{"solution": "2"}', 0.0),
]


@pytest.fixture(scope="module")
def easyr1():
    """The EasyR1 file, loaded by path as EasyR1 loads it."""
    path = Path(__file__).resolve().parents[2] / "reward_fns" / "capcurriculum.py"
    spec = importlib.util.spec_from_file_location("custom_reward_fn_probes", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn_probes"] = module
    spec.loader.exec_module(module)
    return module.compute_score


def test_probes_get_the_same_right_verdict_through_both_entry_points(easyr1) -> None:
    batch = [{"response": r, "response_length": len(r), "ground_truth": gt} for r, gt, _ in PROBES]
    through_easyr1 = [result["accuracy"] for result in easyr1(batch)]
    through_verl = [verl_compute_score("probe", r, gt)["acc"] for r, gt, _ in PROBES]
    expected = [label for _, _, label in PROBES]
    disagreements = [PROBES[i][:2] for i in range(len(PROBES)) if through_easyr1[i] != through_verl[i]]
    assert not disagreements
    wrong = [(PROBES[i][:2], through_verl[i]) for i in range(len(PROBES)) if through_verl[i] != expected[i]]
    assert not wrong


def test_bad_ground_truths_are_counted_by_kind(easyr1) -> None:
    before = guard_stats()
    easyr1([{"response": box("2"), "response_length": 1, "ground_truth": '{"answer": "2",}'}])
    verl_compute_score("probe", box("2"), None)
    after = guard_stats()
    assert after["invalid_ground_truth_malformed_json"] == before.get("invalid_ground_truth_malformed_json", 0) + 1
    assert after["invalid_ground_truth_missing"] == before.get("invalid_ground_truth_missing", 0) + 1


def test_lenient_extraction_is_an_option_of_both_entry_points(easyr1) -> None:
    response, gold = "Therefore the final answer is 42.", "42"
    item = {"response": response, "response_length": 1, "ground_truth": gold}
    assert easyr1([item], extraction="lenient")[0]["accuracy"] == 1.0
    assert verl_compute_score("probe", response, gold, extraction="lenient")["acc"] == 1.0
    with pytest.raises(ValueError, match="extraction"):
        easyr1([item], extraction="loose")
