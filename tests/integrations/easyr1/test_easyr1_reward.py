"""Our reward (reward_fns/capcurriculum.py) through EasyR1's real reward manager, on the curriculum's ground truths;
stage reward kwargs through CurriculumRewardManager."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from verl.protocol import DataProto
from verl.workers.reward import AutoRewardManager, RewardConfig

from vlm_capcurriculum.curriculum import load_curriculum_data, parse_curriculum
from vlm_capcurriculum.integrations.easyr1.layout import DEFAULT_REWARD_FUNCTION, resolve_function_path
from vlm_capcurriculum.integrations.easyr1.reward import CurriculumRewardManager

RESPONSE_LENGTH = 48


def _reward_config(function: str) -> RewardConfig:
    config = RewardConfig(reward_function=function, reward_function_kwargs={"format_weight": 0.1})
    config.post_init()  # as EasyR1's deep_post_init: splits `path:function`
    return config


@pytest.fixture(scope="module")
def reward_config() -> RewardConfig:
    return _reward_config(resolve_function_path(DEFAULT_REWARD_FUNCTION, what="reward"))


@pytest.fixture(scope="module")
def batch(tokenizer, monkeypatch_module):  # type: ignore[no-untyped-def]
    """One record of each stage (choice, number, number with images) answered right, wrong and unformatted."""
    import easyr1_lane as lane

    monkeypatch_module.chdir(lane.REPO)
    spec = parse_curriculum({"batch_size": 1, "stages": lane.sample_stages()})
    data = load_curriculum_data(spec)
    records = [stage.records[0] for stage in data.stages]
    responses, truths, expected = [], [], []
    for record in records:
        for text, accuracy, form in (
            (f"<think>looked</think> \\boxed{{{record.answer}}}", 1.0, 1.0),
            ("<think>looked</think> \\boxed{Z}", 0.0, 1.0),
            (f"\\boxed{{{record.answer}}}", 1.0, 0.0),
        ):
            responses.append(text)
            truths.append(record.ground_truth())
            expected.append((accuracy, form, record.capability))
    ids = torch.full((len(responses), RESPONSE_LENGTH), tokenizer.pad_token_id)
    mask = torch.zeros((len(responses), RESPONSE_LENGTH), dtype=torch.long)
    for row, text in enumerate(responses):
        tokens = [*tokenizer.encode(text, add_special_tokens=False), tokenizer.eos_token_id]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    proto = DataProto.from_dict(
        tensors={"responses": ids, "response_mask": mask},
        non_tensors={"ground_truth": np.array(truths, dtype=object)},
    )
    return proto, expected, mask


@pytest.fixture(scope="module")
def monkeypatch_module():  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def _overall(tensor: torch.Tensor, mask: torch.Tensor) -> list[float]:
    return [float(tensor[row, int(mask[row].sum()) - 1]) for row in range(tensor.size(0))]


def test_easyr1_loads_our_reward_and_scores_the_ground_truth_encoding(reward_config, tokenizer, batch):
    proto, expected, mask = batch
    manager = AutoRewardManager(reward_config, tokenizer)  # EasyR1's own, unmodified
    assert manager.reward_type == "batch"
    tensor, metrics = manager.compute_reward(proto)
    overall = _overall(tensor, mask)
    assert overall == pytest.approx([0.9 * accuracy + 0.1 * form for accuracy, form, _ in expected])
    assert metrics["accuracy"] == [accuracy for accuracy, _, _ in expected]
    assert metrics["format"] == [form for _, form, _ in expected]
    for capability in ("perception", "text_reasoning", "visual_reasoning"):  # per-stage accuracy keys
        assert metrics[f"accuracy_{capability}"] == [1.0, 0.0, 1.0]


def test_stage_reward_kwargs_switch_and_restore(reward_config, tokenizer, batch):
    proto, expected, mask = batch
    manager = CurriculumRewardManager(reward_config, tokenizer)
    base = _overall(manager.compute_reward(proto)[0], mask)
    assert manager.set_reward_kwargs({"format_weight": 0.5}) == {"format_weight": 0.5}
    switched = _overall(manager.compute_reward(proto)[0], mask)
    assert switched == pytest.approx([0.5 * accuracy + 0.5 * form for accuracy, form, _ in expected])
    assert manager.set_reward_kwargs({}) == {"format_weight": 0.1}  # {} = the configured kwargs
    assert _overall(manager.compute_reward(proto)[0], mask) == base
