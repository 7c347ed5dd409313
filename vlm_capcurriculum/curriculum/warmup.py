"""The per-stage LR warm-up (the ``lr_warmup_ratio`` stage knob), shared by every backend's engine: what each of
the reference's chained per-stage EasyR1 runs did (``get_constant_schedule_with_warmup``, lr x 0 at the first
update), restarted at every stage start. :class:`StageWarmup` is an object, not a closure, because
``LambdaLR.state_dict`` saves the ``__dict__`` of callable objects, so the schedule survives a checkpoint.
"""

from __future__ import annotations

from typing import Any


def warmup_steps(ratio: float, stage_steps: int, updates_per_step: int = 1) -> int:
    """Warm-up length in scheduler updates: ``int(ratio x stage_steps x updates_per_step)`` (EasyR1's rounding)."""
    if not 0 <= ratio < 1:
        raise ValueError(f"lr_warmup_ratio must be in [0, 1), got {ratio!r}")
    return int(ratio * stage_steps * updates_per_step)


class StageWarmup:
    """``LambdaLR`` factor: linear warm-up over ``warmup`` updates from update ``start``, then 1."""

    def __init__(self, warmup: int = 0, start: int = 0) -> None:
        self.warmup = warmup
        self.start = start

    def restart(self, step: int, warmup: int) -> None:
        self.start = step
        self.warmup = warmup

    def __call__(self, step: int) -> float:
        if self.warmup <= 0:
            return 1.0
        return min(1.0, max(0.0, (step - self.start) / self.warmup))


def install_stage_warmup(optimizer: Any, scheduler: Any, *, start: int, warmup: int) -> list[float]:
    """Make every factor of ``scheduler`` (a ``torch.optim.lr_scheduler.LambdaLR``) a :class:`StageWarmup` from
    update ``start`` over ``warmup`` updates, and give each param group the lr it yields now (base lr x factor at
    ``scheduler.last_epoch``). Replaces the factors entirely: only valid over a constant schedule (the caller checks).
    Returns the learning rates in effect for the next update."""
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is None:
        raise TypeError(f"a per-stage warm-up needs a LambdaLR scheduler, got {type(scheduler).__name__}")
    for index in range(len(lambdas)):
        lambdas[index] = StageWarmup(warmup, start)
    step = scheduler.last_epoch
    for group, base in zip(optimizer.param_groups, scheduler.base_lrs, strict=True):
        group["initial_lr"] = base
        group["lr"] = base * lambdas[0](step)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]  # torch private: get_last_lr()
    return list(scheduler._last_lr)
