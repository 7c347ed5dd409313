"""The per-stage LR warm-up on a real torch ``LambdaLR``: factors, restart at a later stage, checkpoint round trip."""

from __future__ import annotations

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from vlm_capcurriculum.curriculum import OverrideError, Overrides
from vlm_capcurriculum.curriculum.warmup import StageWarmup, install_stage_warmup, warmup_steps


def test_warmup_steps_round_as_easyr1() -> None:
    # InternVL3-8B stage 2: 375 steps at 0.05 -> int(18.75) = 18, as EasyR1's int(ratio * training_steps)
    assert warmup_steps(0.05, 375) == 18
    assert warmup_steps(0.25, 3, updates_per_step=2) == 1
    assert warmup_steps(0.0, 100) == 0
    with pytest.raises(ValueError, match="lr_warmup_ratio"):
        warmup_steps(1.0, 10)


def test_the_ratio_is_a_validated_knob() -> None:
    assert Overrides(lr_warmup_ratio=0.05).knobs() == {"lr_warmup_ratio": 0.05}
    for bad in (1.0, -0.1, "0.1"):
        with pytest.raises(OverrideError, match="lr_warmup_ratio"):
            Overrides(lr_warmup_ratio=bad)  # type: ignore[arg-type]


def _lrs_over(scheduler: LambdaLR, optimizer: torch.optim.Optimizer, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return out


def test_install_restarts_the_warm_up_at_a_stage_start_and_survives_a_checkpoint() -> None:
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = LambdaLR(optimizer, lambda step: 1.0)  # verl's / EasyR1's constant schedule without warm-up
    assert _lrs_over(scheduler, optimizer, 3) == [1.0, 1.0, 1.0]
    # a stage starting at update 3 with 4 warm-up updates: lr x 0, 1/4, 2/4, 3/4, then 1
    assert install_stage_warmup(optimizer, scheduler, start=3, warmup=4) == [0.0]
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"warmup": 4, "start": 3}]  # two numbers, no closure: torch.save works
    assert _lrs_over(scheduler, optimizer, 6) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]

    # restored from the checkpoint taken at the stage start: the same schedule follows
    fresh_optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    fresh = LambdaLR(fresh_optimizer, StageWarmup())
    fresh.load_state_dict(state)
    fresh_optimizer.param_groups[0]["lr"] = fresh.get_last_lr()[0]
    assert _lrs_over(fresh, fresh_optimizer, 6) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
