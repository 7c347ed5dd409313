"""Stage-boundary operations on the objects EasyR1's FSDP worker owns: model, optimizer, LR scheduler, configs.

Plain functions and one small class over torch objects, so the lane tests run them on a real (tiny) FSDP model,
a real AdamW and EasyR1's own LambdaLR; worker_mixin.py only routes driver calls to them.

The operations every backend shares (finding and gating the vision tower, the optimizer reset, full-weight
gathers and copies) live in :mod:`vlm_capcurriculum.integrations.torch_ops`; they are re-exported here so the
worker reaches every operation through this module. Gating the tower mid-run needs FSDP ``use_orig_params=True``
(see ``VisionTowerGate``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

from vlm_capcurriculum.curriculum.warmup import install_stage_warmup
from vlm_capcurriculum.integrations.torch_ops import (
    VisionTowerGate,
    copy_weights,
    gather_full_state_dict,
    load_full_weights,
    reset_optimizer_state,
    unwrap_model,
)

#: Actor-config fields DataParallelPPOActor reads as ``self.config.<knob>`` on every micro-batch (at b44b311).
LIVE_ACTOR_KNOBS = ("kl_coef", "clip_ratio_low", "clip_ratio_high", "clip_ratio_dual", "max_grad_norm")

__all__ = [
    "LIVE_ACTOR_KNOBS",
    "VisionTowerGate",
    "copy_weights",
    "gather_full_state_dict",
    "load_full_weights",
    "reset_optimizer_state",
    "set_actor_knobs",
    "set_base_lr",
    "set_stage_warmup",
    "unwrap_model",
]


def _lambda_scheduler(scheduler: Any) -> LambdaLR:
    if not isinstance(scheduler, LambdaLR):
        raise TypeError(
            f"expected EasyR1's LambdaLR (verl.utils.torch_functional), got {type(scheduler).__name__}: "
            "cannot change its base learning rate"
        )
    return scheduler


def set_base_lr(optimizer: torch.optim.Optimizer, scheduler: Any, lr: float) -> list[float]:
    """Change the peak learning rate; the schedule (warmup, cosine) keeps its position.

    EasyR1's schedulers multiply ``base_lrs`` by a factor of the step, so the new rate is ``lr * factor``
    from now on, including the very next optimizer step (the group's current ``lr`` is updated too).
    Returns the new current learning rates.
    """
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr >= 0):
        raise ValueError(f"learning rate must be a finite number >= 0, got {lr!r}")
    scheduler = _lambda_scheduler(scheduler)
    scheduler.base_lrs = [float(lr)] * len(optimizer.param_groups)
    current = []
    for group, factor in zip(optimizer.param_groups, scheduler.lr_lambdas, strict=True):
        group["initial_lr"] = float(lr)
        group["lr"] = float(lr) * factor(scheduler.last_epoch)
        current.append(group["lr"])
    scheduler._last_lr = list(current)  # torch private: what get_last_lr() returns (EasyR1 logs it as actor/lr)
    return current


def set_stage_warmup(optimizer: torch.optim.Optimizer, scheduler: Any, steps_into_stage: int, warmup: int) -> list[float]:
    """The stage's LR warm-up (``lr_warmup_ratio`` knob): ``warmup`` updates of linear warm-up from the stage's first
    update, ``steps_into_stage`` scheduler steps ago (EasyR1 steps it once per ``update_actor``). It replaces the
    schedule's factors: :mod:`.prepare` allows it only over EasyR1's constant schedule without its own warm-up."""
    scheduler = _lambda_scheduler(scheduler)
    return install_stage_warmup(optimizer, scheduler, start=scheduler.last_epoch - steps_into_stage, warmup=warmup)


def set_actor_knobs(actor_config: Any, knobs: Mapping[str, float]) -> dict[str, float]:
    """Set loss/optimizer knobs that DataParallelPPOActor reads on every micro-batch; returns the old values."""
    unknown = sorted(set(knobs) - set(LIVE_ACTOR_KNOBS))
    if unknown:
        raise KeyError(f"not a live EasyR1 actor knob: {unknown}; supported: {list(LIVE_ACTOR_KNOBS)}")
    previous = {}
    for name, value in knobs.items():
        if not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        if value < 0 or (name.startswith("clip_ratio") and value == 0):
            raise ValueError(f"{name} must be {'> 0' if name.startswith('clip_ratio') else '>= 0'}, got {value}")
        if not hasattr(actor_config, name):
            raise AttributeError(f"{type(actor_config).__name__} has no field {name!r} in this EasyR1 version")
        previous[name] = getattr(actor_config, name)
        setattr(actor_config, name, float(value))
    return previous
