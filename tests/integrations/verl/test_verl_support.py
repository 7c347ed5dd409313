"""Which overrides verl can apply (override_support) and the plan-time check, on configs composed from verl's own YAML."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("verl")

from vlm_capcurriculum.curriculum.overrides import FIELDS
from vlm_capcurriculum.integrations.verl.support import (
    UnsupportedOverrideError,
    check_overrides,
    override_support,
)

UNSUPPORTED_MID_RUN = {"rollout_temperature", "rollout_n", "reward"}


def _supported(config: Any) -> set[str]:
    return {name for name, entry in override_support(config).items() if entry.supported}


def test_our_defaults_support_every_engine_operation(verl_config: Any) -> None:
    support = override_support(verl_config())
    assert set(support) == set(FIELDS)
    assert _supported(verl_config()) == set(FIELDS) - UNSUPPORTED_MID_RUN
    assert "agent-loop workers" in support["rollout_temperature"].detail


def test_fsdp1_flat_parameters_cannot_freeze_the_tower(verl_config: Any) -> None:
    config = verl_config(["actor_rollout_ref.actor.strategy=fsdp"])
    entry = override_support(config)["vision_tower"]
    assert not entry.supported and "use_orig_params=true" in entry.detail
    assert override_support(
        verl_config(
            ["actor_rollout_ref.actor.strategy=fsdp", "actor_rollout_ref.actor.fsdp_config.use_orig_params=true"]
        )
    )["vision_tower"].supported


def test_kl_and_reference_need_a_reference_model(verl_config: Any) -> None:
    config = verl_config(["actor_rollout_ref.actor.use_kl_loss=false"])
    support = override_support(config)
    assert not support["kl_coef"].supported and "cannot be switched on later" in support["kl_coef"].detail
    assert not support["refresh_reference"].supported
    lora = override_support(verl_config(["actor_rollout_ref.model.lora_rank=8"]))
    assert lora["kl_coef"].supported and not lora["refresh_reference"].supported


def test_no_validation_files_no_validation(verl_config: Any) -> None:
    assert not override_support(verl_config(["data.val_files=null"]))["validate"].supported


def test_check_accepts_a_paper_like_stage(verl_config: Any) -> None:
    check_overrides(
        verl_config(),
        {
            "vision_tower": "frozen",
            "lr": 3.0e-7,
            "kl_coef": 0.05,
            "clip_ratio_low": 0.15,
            "clip_ratio_high": 0.15,
            "max_grad_norm": 0.5,
            "reset_optimizer": False,
            "refresh_reference": True,
            "save_checkpoint": True,
            "validate": True,
            "rollout_temperature": 1.0,  # the configured value: not a change
            "rollout_n": 5,
            "reward": {},
        },
        where="stage 'text_reasoning'",
    )


def test_check_reports_every_problem_at_once(verl_config: Any) -> None:
    config = verl_config(["actor_rollout_ref.actor.use_kl_loss=false"])
    with pytest.raises(UnsupportedOverrideError) as error:
        check_overrides(
            config,
            {
                "kl_coef": 0.1,
                "rollout_n": 8,
                "reward": {"format_weight": 0.2},
                "warmup": 3,
            },
            where="stage 'perception'",
        )
    message = str(error.value)
    assert all(problem.startswith("stage 'perception': ") for problem in error.value.problems)
    for expected in (
        "kl_coef: not supported by verl here",
        "rollout_n=8: cannot change mid-run (configured 5)",
        "reward: not supported by verl here",
        "warmup: unknown override",
    ):
        assert expected in message


def test_reset_optimizer_needs_no_warmup(verl_config: Any) -> None:
    """The core's reset restarts the LR warm-up; verl's one schedule per run cannot, so a warm-up makes it an error."""
    assert override_support(verl_config(["actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.0"]))[
        "reset_optimizer"
    ].supported
    for override in (
        "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.05",
        "actor_rollout_ref.actor.optim.lr_warmup_steps=10",
    ):
        entry = override_support(verl_config([override]))["reset_optimizer"]
        assert not entry.supported and "restart the warm-up" in entry.detail


def test_a_stage_warm_up_needs_verls_constant_schedule_without_its_own(verl_config: Any) -> None:
    assert override_support(verl_config())["lr_warmup_ratio"].supported
    check_overrides(verl_config(), {"lr_warmup_ratio": 0.05}, where="stage 'text_reasoning'")
    for override in (
        "actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.05",
        "actor_rollout_ref.actor.optim.lr_scheduler_type=cosine",
    ):
        entry = override_support(verl_config([override]))["lr_warmup_ratio"]
        assert not entry.supported and "constant one without a warm-up" in entry.detail
