"""Stage-transition operations on one training engine's model, optimizer and LR scheduler (worker side).

These are plain torch functions so they can be tested on CPU with a real model and optimizer; the worker extension
(:mod:`.worker`) applies them to verl 0.9.1's engine objects: ``FSDPEngine.module`` (the FSDP1- or FSDP2-wrapped
Hugging Face model), ``.optimizer`` (built by ``verl.workers.config.optimizer.build_optimizer`` over *all*
parameters) and ``.lr_scheduler`` (a ``LambdaLR`` from ``verl.utils.torch_functional``).

The operations every backend shares (the vision gate, optimizer reset, weight copies) live in
:mod:`vlm_capcurriculum.integrations.torch_ops`; this module adds verl's learning-rate changes and the reference
snapshot a resume reloads.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from vlm_capcurriculum.curriculum.warmup import install_stage_warmup
from vlm_capcurriculum.integrations.torch_ops import (
    VisionTowerGate,
    gather_full_state_dict,
    is_distributed,
    load_full_weights,
)


class EngineOperationError(RuntimeError):
    """A stage transition that cannot be applied to this engine (the message says why and what to change)."""


_GATE_ATTR = "_capcurriculum_vision_gate"


def install_vision_gate(engine: Any) -> VisionTowerGate:
    """The vision gate (:class:`~vlm_capcurriculum.integrations.torch_ops.VisionTowerGate`) of verl's engine,
    built once over its ``module`` and ``optimizer``."""
    gate = getattr(engine, _GATE_ATTR, None)
    if gate is None:
        gate = VisionTowerGate(engine.module, engine.optimizer)
        setattr(engine, _GATE_ATTR, gate)
    return gate


def set_learning_rate(
    optimizer: torch.optim.Optimizer, lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None, lr: float
) -> list[float]:
    """Make ``lr`` the base learning rate from now on; returns the learning rates in effect for the next update.

    verl's schedulers are ``LambdaLR`` (lr = base_lr x factor(step)), so the base rates move and the current rates
    become ``lr x factor(current step)``: warm-up or decay in progress continues from where it is. Several param
    groups keep their ratios to the first group. ``base_lrs`` is part of the scheduler's ``state_dict``, which verl
    checkpoints, so a resumed run keeps the new rate."""
    if lr <= 0:
        raise EngineOperationError(f"learning rate must be positive, got {lr}")
    groups = optimizer.param_groups
    if lr_scheduler is None:
        for group in groups:
            group["lr"] = lr
        return [group["lr"] for group in groups]
    lambdas = getattr(lr_scheduler, "lr_lambdas", None)
    if lambdas is None:
        raise EngineOperationError(
            f"cannot change the learning rate of a {type(lr_scheduler).__name__}; only LambdaLR schedulers "
            "(verl's constant and cosine schedules) are supported"
        )
    first = lr_scheduler.base_lrs[0]
    lr_scheduler.base_lrs = [lr * (base / first) if first else lr for base in lr_scheduler.base_lrs]
    step = lr_scheduler.last_epoch
    for group, base, factor in zip(groups, lr_scheduler.base_lrs, lambdas, strict=True):
        group["lr"] = base * factor(step)
        group["initial_lr"] = base
    lr_scheduler._last_lr = [group["lr"] for group in groups]
    return list(lr_scheduler._last_lr)


def set_stage_warmup(
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    steps_into_stage: int,
    warmup: int,
) -> list[float]:
    """The per-stage warm-up (``lr_warmup_ratio`` knob): ``warmup`` updates of linear warm-up counted from the stage's
    first update, which was ``steps_into_stage`` scheduler steps ago (0 at the stage start; more after a resume
    inside it). verl's v1 worker steps the scheduler once per training step. Replaces the schedule's factors, so the
    plan check allows it only over verl's constant schedule without its own warm-up (:mod:`.capabilities`)."""
    if lr_scheduler is None:
        raise EngineOperationError("a per-stage LR warm-up needs verl's LR scheduler; this engine has none")
    try:
        return install_stage_warmup(
            optimizer, lr_scheduler, start=lr_scheduler.last_epoch - steps_into_stage, warmup=warmup
        )
    except TypeError as error:
        raise EngineOperationError(str(error)) from None


def save_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the module's full weights to ``path`` (rank 0), so a copied reference survives a resume."""
    state_dict = gather_full_state_dict(module)
    if not is_distributed() or torch.distributed.get_rank() == 0:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(state_dict, tmp)
        os.replace(tmp, path)
    if is_distributed():
        torch.distributed.barrier()


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load weights written by :func:`save_weights` (rank 0 reads, the others receive by broadcast)."""
    rank0 = not is_distributed() or torch.distributed.get_rank() == 0
    found = [os.path.exists(path) if rank0 else None]
    if is_distributed():
        torch.distributed.broadcast_object_list(found, src=0)  # every rank raises together, none waits forever
    if not found[0]:
        raise EngineOperationError(f"no saved weights at {os.fspath(path)} (on rank 0)")
    state_dict = torch.load(path, map_location="cpu", weights_only=True) if rank0 else {}
    load_full_weights(module, state_dict)


def count_parameters(parameters: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters)
