"""``reward_fns/capcurriculum.py``, loaded the way EasyR1 loads it (EasyR1 itself cannot be installed here).

EasyR1 (``verl/workers/reward/function.py`` @ b44b311): ``importlib.util.spec_from_file_location("custom_reward_fn",
path)``, module registered in ``sys.modules``, ``REWARD_TYPE`` read from the module, the function wrapped in
``functools.partial(fn, **reward_function_kwargs)`` and called with the batch; every key of every result is
appended to a per-key list and averaged (``reward/<key>``).
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path

import pytest
from testkit import qwen

REWARD_FILE = Path(__file__).resolve().parents[2] / "reward_fns" / "capcurriculum.py"


def load_like_easyr1(path: Path):
    spec = importlib.util.spec_from_file_location("custom_reward_fn", str(path))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_reward_fn"] = module
    spec.loader.exec_module(module)
    return module




def reward_inputs(pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"response": r, "response_length": len(r.split()), "ground_truth": g} for r, g in pairs]


def test_module_contract() -> None:
    module = load_like_easyr1(REWARD_FILE)
    assert module.REWARD_TYPE == "batch"
    assert callable(module.compute_score)


def test_scores_a_batch_with_kwargs_and_reduces_like_easyr1() -> None:
    module = load_like_easyr1(REWARD_FILE)
    reward_fn = partial(module.compute_score, **{"format_weight": 0.1, "timeout_s": 2.0})
    perception = json.dumps({"answer": "B", "choices": {"A": "red", "B": "blue"}, "capability": "perception"})
    counting = json.dumps({"answer": "3", "type": "number", "capability": "perception"})
    batch = reward_inputs(
        [
            (qwen("\\boxed{blue}"), perception),
            (qwen("\\boxed{A}"), perception),
            (qwen("\\boxed{three}"), counting),
            (qwen("\\boxed{\\frac{1}{2}}"), "0.5"),
            ("no format, answer 0.5", "0.5"),
        ]
    )
    scores = reward_fn(batch)
    assert [s["accuracy"] for s in scores] == [1.0, 0.0, 1.0, 1.0, 0.0]  # no box: no accuracy (the paper's rule)
    assert [s["format"] for s in scores] == [1.0, 1.0, 1.0, 1.0, 0.0]
    assert scores[0]["overall"] == pytest.approx(1.0) and scores[4]["overall"] == 0.0
    lenient = partial(module.compute_score, extraction="lenient")(batch)
    assert [s["accuracy"] for s in lenient] == [1.0, 0.0, 1.0, 1.0, 1.0]
    assert lenient[4]["overall"] == pytest.approx(0.9)

    # EasyR1's reduction: a list per key, then the mean of each list.
    metrics: dict[str, list[float]] = defaultdict(list)
    for result in scores:
        for key, value in result.items():
            metrics[key].append(value)
    means = {key: statistics.fmean(values) for key, values in metrics.items()}  # numpy's mean, without numpy
    assert means["accuracy_choice"] == 0.5  # over the two choice samples only
    assert means["accuracy_number"] == 1.0
    assert means["accuracy_math"] == 0.5  # the boxed 1/2 is right, the unboxed 0.5 is not
    assert means["accuracy_perception"] == pytest.approx(2 / 3)
    assert means["accuracy"] == pytest.approx(0.6)


def test_breakdown_can_be_switched_off() -> None:
    module = load_like_easyr1(REWARD_FILE)
    scores = partial(module.compute_score, breakdown=False)(reward_inputs([(qwen("\\boxed{B}"), "B")]))
    assert scores == [{"overall": 1.0, "accuracy": 1.0, "format": 1.0}]


def test_configuration_errors_fail_loudly() -> None:
    module = load_like_easyr1(REWARD_FILE)
    with pytest.raises(TypeError):
        partial(module.compute_score, format_wieght=0.2)(reward_inputs([("x", "1")]))
    with pytest.raises(TypeError, match="batch reward"):
        module.compute_score({"response": "x", "response_length": 1, "ground_truth": "1"})
