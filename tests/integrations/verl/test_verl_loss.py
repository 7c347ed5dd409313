"""Rebinding the actor loss: the partial we hand to ``set_loss_fn`` is verl's ``ppo_loss`` with the stage's KL
coefficient and clip ratios, checked by calling it on tensors."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

pytest.importorskip("verl")

import torch
from omegaconf import OmegaConf
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.utils.config import omega_conf_to_dataclass
from verl.workers.utils.losses import ppo_loss

from vlm_capcurriculum.integrations.verl.engine import build_actor_loss_fn


def _batch(batch_size: int = 4, prompt: int = 3, response: int = 6, seed: int = 0) -> tuple[dict, TensorDict]:
    """A padded batch in the layout verl's engine hands the loss (prompts | responses, flat log-probs)."""
    g = torch.Generator().manual_seed(seed)
    data = TensorDict(
        {
            "prompts": torch.randint(0, 100, (batch_size, prompt), generator=g),
            "responses": torch.randint(0, 100, (batch_size, response), generator=g),
            "attention_mask": torch.ones(batch_size, prompt + response, dtype=torch.long),
            "response_mask": torch.ones(batch_size, response),
            "old_log_probs": -torch.rand(batch_size, response, generator=g),
            "advantages": torch.randn(batch_size, response, generator=g),
            "ref_log_prob": -torch.rand(batch_size, response, generator=g),
        },
        batch_size=[batch_size],
    )
    tu.assign_non_tensor(data, dp_size=1, batch_num_tokens=None, global_batch_size=None)
    # new log-probs far from the old ones, so that clipping matters
    log_probs = torch.log(torch.rand(batch_size * (prompt + response), generator=g) * 0.9 + 0.05)
    return {"log_probs": log_probs}, data


def _value(metric: Any) -> float:
    return float(metric.values[0]) if hasattr(metric, "values") else float(metric)


def test_unchanged_knobs_reproduce_the_workers_loss(verl_config: Any) -> None:
    config = verl_config()
    model_output, data = _batch()
    # what ActorRolloutRefWorker.init_model binds (verl/workers/engine_workers.py)
    actor = omega_conf_to_dataclass(
        OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.actor, resolve=True))
    )
    workers_loss, _ = partial(ppo_loss, config=actor)(model_output=model_output, data=data)
    ours, _ = build_actor_loss_fn(config, {})(model_output=model_output, data=data)
    assert torch.equal(workers_loss, ours)


def test_kl_coefficient_is_bound_into_the_loss(verl_config: Any) -> None:
    config = verl_config()
    model_output, data = _batch()
    without, _ = build_actor_loss_fn(config, {"kl_coef": 0.0})(model_output=model_output, data=data)
    with_kl, metrics = build_actor_loss_fn(config, {"kl_coef": 0.5})(model_output=model_output, data=data)
    assert metrics["kl_coef"] == 0.5
    assert with_kl - without == pytest.approx(0.5 * _value(metrics["kl_loss"]), rel=1e-5)
    assert _value(metrics["kl_loss"]) > 0


def test_clip_ratios_are_bound_into_the_loss(verl_config: Any) -> None:
    config = verl_config()
    model_output, data = _batch()
    _, wide = build_actor_loss_fn(config, {"clip_ratio_low": 10.0, "clip_ratio_high": 10.0})(
        model_output=model_output, data=data
    )
    _, narrow = build_actor_loss_fn(config, {"clip_ratio_low": 0.01, "clip_ratio_high": 0.01})(
        model_output=model_output, data=data
    )
    assert _value(wide["actor/pg_clipfrac"]) == 0.0
    assert _value(narrow["actor/pg_clipfrac"]) > 0.5


def test_overrides_map_to_actor_fields_and_unknown_names_fail(verl_config: Any) -> None:
    actor = build_actor_loss_fn(verl_config(), {"kl_coef": 0.05, "clip_ratio_high": 0.28}).keywords["config"]
    assert actor.kl_loss_coef == 0.05 and actor.clip_ratio_high == 0.28 and actor.clip_ratio_low == 0.2
    with pytest.raises(KeyError, match="entropy_coeff"):
        build_actor_loss_fn(verl_config(), {"entropy_coeff": 0.1})
