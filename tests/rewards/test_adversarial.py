"""Hostile answers: each scores 0, never raises and never hangs (a hang fails the test's timeout; speed is measured
by ``benchmarks/rewards.py``, not by wall-clock asserts that a loaded machine can break)."""

from __future__ import annotations

import pytest
from testkit import qwen

from vlm_capcurriculum.rewards import score, score_batch
from vlm_capcurriculum.rewards.guard import prestart_pool

LIMIT_S = 2.0

ADVERSARIAL = {
    "python power tower": (qwen("\\boxed{9**9**9**9}"), "1"),
    "latex power tower": (qwen("\\boxed{9^{9^{9^{9}}}}"), "1"),
    "tower of twos": (qwen("\\boxed{2^{2^{2^{2^{2^{2}}}}}}"), "1"),
    "huge power": (qwen("\\boxed{10^{10^{10}}}"), "1"),
    "tiny power": (qwen("\\boxed{10^{-10^{10}}}"), "0"),
    "factorial": (qwen("\\boxed{1000000!}"), "1"),
    "factorial of a power": (qwen("\\boxed{(10^{6})!}"), "1"),
    "binomial": (qwen("\\boxed{\\binom{100000}{50000}}"), "1"),
    "huge sum": (qwen("\\boxed{\\sum_{k=1}^{10^{12}} k}"), "1"),
    "huge product": (qwen("\\boxed{\\prod_{k=1}^{10^{7}} k}"), "1"),
    "exponent literal": (qwen("\\boxed{1e999999999}"), "1"),
    "5000-digit numeral": (qwen("\\boxed{" + "9" * 5000 + "}"), "9"),
    "5000-deep parentheses": (qwen("\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}"), "2"),
    "5000-deep braces": (qwen("\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}"), "2"),
    "1000-deep fractions": (qwen("\\boxed{" + "\\frac{1}{" * 1000 + "2" + "}" * 1000 + "}"), "1"),
    "1 MB response": (qwen("x" * 1_000_000 + "\\boxed{1}"), "1"),
    "1 MB reasoning": ("<think>" + "a" * 1_000_000 + "</think>\\boxed{1}", "1"),
    "100k boxes": (qwen("\\boxed{1}" * 100_000), "2"),
    "100k unclosed boxes": (qwen("\\boxed{" * 100_000), "1"),
    "100k dollar signs": (qwen("$" * 100_000), "1"),
    "50k opening tags": ("<think>" * 50_000, "1"),
    "code injection": (qwen("\\boxed{__import__('os').system('touch /tmp/vlmcc-pwned')}"), "0"),
    "eval": (qwen("\\boxed{eval('1+1')}"), "2"),
    "lambda": (qwen("\\boxed{(lambda: 2)()}"), "2"),
    "symbolic tower": (qwen("\\boxed{x^{x^{x^{x^{x}}}}}"), "1"),
    "huge expansion": (qwen("\\boxed{(x+1)^{1000}}"), "x^{1000}"),
    "division by zero": (qwen("\\boxed{\\frac{1}{0}}"), "1"),
    "5000-term sum": (qwen("\\boxed{" + "1+" * 5000 + "1}"), "1"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_scores_zero_under_the_limit(name: str) -> None:
    response, gold = ADVERSARIAL[name]
    # the guard's workers are up (booted, as in training): time the answer alone. (Scoring an answer to warm up is
    # not enough: the exact rules may decide it without the guard, and the next answer would pay the workers' boot.)
    assert prestart_pool(wait_s=120.0)
    result = score(response, gold, timeout_s=LIMIT_S)
    assert result["accuracy"] == 0.0
    assert set(result) == {"overall", "accuracy", "format"}


def test_code_is_never_run(tmp_path) -> None:
    marker = tmp_path / "ran"
    payloads = [
        f"__import__('pathlib').Path('{marker}').touch()",
        f"open('{marker}', 'w')",
        f"exec(\"open('{marker}', 'w')\")",
    ]
    score_batch([qwen(f"\\boxed{{{payload}}}") for payload in payloads], ["0"] * len(payloads))
    assert not marker.exists()


@pytest.mark.timeout(120)
def test_a_batch_of_hostile_answers_finishes() -> None:
    responses = [response for response, _ in ADVERSARIAL.values()]
    golds = [gold for _, gold in ADVERSARIAL.values()]
    results = score_batch(responses, golds, timeout_s=LIMIT_S)
    assert [result["accuracy"] for result in results] == [0.0] * len(results)
