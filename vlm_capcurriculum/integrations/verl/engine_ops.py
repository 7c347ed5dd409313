"""Stage-transition operations on one training engine's model, optimizer and LR scheduler (worker side).

These are plain torch functions so they can be tested on CPU with a real model and optimizer; the worker extension
(:mod:`.worker`) applies them to verl 0.9.1's engine objects: ``FSDPEngine.module`` (the FSDP1- or FSDP2-wrapped
Hugging Face model), ``.optimizer`` (built by ``verl.workers.config.optimizer.build_optimizer`` over *all*
parameters) and ``.lr_scheduler`` (a ``LambdaLR`` from ``verl.utils.torch_functional``).

Freezing the vision tower mid-run: verl builds the optimizer over every parameter and FSDP owns ``requires_grad``
after wrapping (FSDP2 caches the unsharded parameters; FSDP1 flattens them), so toggling ``requires_grad`` is not
reliable. Instead a gate drops the vision-tower gradients right before the engine clips and steps: the clip norm
then covers only trainable parameters and AdamW skips parameters without a gradient (no moment update, no weight
decay), so a frozen tower stays bit-identical. This is the same update EasyR1's ``freeze_vision_tower`` gives (it
removes the tower from the optimizer before wrapping), but it can be switched per stage. The backward pass still
computes the tower's gradients: freezing saves no compute here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from vlm_capcurriculum.curriculum.warmup import install_stage_warmup
from vlm_capcurriculum.models.vision import known_class_name, vision_tower

#: Attribute paths of a vision tower in Hugging Face VLMs the project does not know (:mod:`vlm_capcurriculum.models.
#: vision` defines the tower of Qwen2.5-VL, Qwen3-VL and InternVL: for InternVL ``vision_tower`` *and*
#: ``multi_modal_projector``, the counterpart of Qwen's merger inside ``visual``), tried in order.
VISION_TOWER_PATHS: tuple[str, ...] = (
    "model.visual",
    "visual",
    "model.vision_tower",
    "vision_tower",
    "model.vision_model",
    "vision_model",
)


class EngineOperationError(RuntimeError):
    """A stage transition that cannot be applied to this engine (the message says why and what to change)."""


def unwrap_model(module: nn.Module) -> nn.Module:
    """The Hugging Face model inside FSDP1 (``_fsdp_wrapped_module``) and PEFT (``get_base_model``) wrappers.

    FSDP2 (``fully_shard``) wraps in place, so its module is already the model."""
    model = module
    while True:
        inner = getattr(model, "_fsdp_wrapped_module", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        get_base_model = getattr(model, "get_base_model", None)
        if callable(get_base_model) and type(model).__name__.startswith("Peft"):
            model = get_base_model()
            continue
        return model


def find_vision_tower(module: nn.Module) -> tuple[str, nn.Module]:
    """The vision tower submodule and its attribute path, or an error naming the paths tried."""
    model = unwrap_model(module)
    for path in VISION_TOWER_PATHS:
        node: Any = model
        for part in path.split("."):
            node = getattr(node, part, None)
            if node is None:
                break
        if isinstance(node, nn.Module):
            return path, node
    raise EngineOperationError(
        f"{type(model).__name__} has no vision tower at any of {', '.join(VISION_TOWER_PATHS)}; "
        "vision_tower overrides need a vision-language model"
    )


def vision_tower_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The vision tower's own parameters, refusing FSDP1 flat parameters (which mix tower and language weights):
    the project's definition for the model classes it knows (InternVL: tower and projector), else
    :func:`find_vision_tower`."""
    model = unwrap_model(module)
    if known_class_name(model) is not None:
        tower = vision_tower(model)
        path = " + ".join(tower.prefixes)
        params = list(tower.parameters())
    else:
        path, found = find_vision_tower(module)
        params = list(found.parameters())
    if any(type(p).__name__ == "FlatParameter" for p in params):
        raise EngineOperationError(
            f"the vision tower ({path}) is held in FSDP1 flat parameters shared with other weights; set "
            "actor_rollout_ref.actor.strategy=fsdp2 or actor_rollout_ref.actor.fsdp_config.use_orig_params=true"
        )
    if not params:
        raise EngineOperationError(f"the vision tower ({path}) has no parameters")
    return params


@dataclass
class VisionTowerGate:
    """Drops the vision tower's gradients before clipping and stepping while ``frozen``."""

    parameters: list[nn.Parameter]
    frozen: bool = False
    steps_gated: int = field(default=0)

    def before_optimizer_step(self) -> None:
        if not self.frozen:
            return
        for param in self.parameters:
            param.grad = None
        self.steps_gated += 1


_GATE_ATTR = "_capcurriculum_vision_gate"


def install_vision_gate(engine: Any, module: nn.Module | None = None) -> VisionTowerGate:
    """Wrap ``engine.optimizer_step`` (once) so the gate runs before verl's clip-and-step; returns the gate.

    ``engine`` is anything with an ``optimizer_step()`` method and a ``module`` attribute (verl's ``FSDPEngine``)."""
    gate = getattr(engine, _GATE_ATTR, None)
    if gate is not None:
        return gate
    gate = VisionTowerGate(vision_tower_parameters(module if module is not None else engine.module))
    unguarded_step: Callable[[], Any] = engine.optimizer_step

    def optimizer_step() -> Any:
        gate.before_optimizer_step()
        return unguarded_step()

    engine.optimizer_step = optimizer_step
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


def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> int:
    """Forget moments and step counts (they are rebuilt lazily on the next step); returns how many parameters had
    state. Param groups (learning rates, weight decay) are kept."""
    count = len(optimizer.state)
    optimizer.state.clear()
    return count


def _is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


@contextlib.contextmanager
def _on_collective_device(module: nn.Module) -> Iterator[None]:
    """Keep ``module`` on the process group's device while its shards are gathered or broadcast.

    NCCL cannot move CPU tensors: a module whose parameters live on CPU (FSDP2 ``CPUOffloadPolicy``, which verl
    uses for the reference model) is moved to the GPU for the collective and back afterwards, each buffer to where
    it was (verl keeps buffers of CPU-offloaded modules on the GPU; ``fsdp2_load_full_state_dict`` does the same)."""
    if not _is_distributed():
        yield
        return
    target = torch.distributed.distributed_c10d._get_pg_default_device()
    param_device = next(module.parameters()).device
    if param_device == target:
        yield
        return
    buffer_devices = {name: buf.device for name, buf in module.named_buffers()}
    module.to(target)
    try:
        yield
    finally:
        module.to(param_device)
        for name, buf in module.named_buffers():
            if buf.device != buffer_devices.get(name, buf.device):
                buf.data = buf.data.to(buffer_devices[name])


def _full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """The unsharded state dict on CPU (on rank 0 only when distributed)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    with _on_collective_device(module):
        return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def _load_full_state_dict(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    distributed = _is_distributed() and torch.distributed.get_world_size() > 1
    with _on_collective_device(module):
        set_model_state_dict(
            module,
            state_dict,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=distributed, strict=True),
        )


def copy_weights(source: nn.Module, target: nn.Module) -> int:
    """Load ``source``'s weights into ``target`` (same architecture; dtypes and sharding may differ).

    Used to make the KL reference the current policy. Works on plain and FSDP1/FSDP2 modules through
    ``torch.distributed.checkpoint.state_dict``: rank 0 gathers the full weights on CPU and broadcasts them into
    the target's shards. Returns the number of tensors copied (on rank 0)."""
    state_dict = _full_state_dict(source)
    _load_full_state_dict(target, state_dict)
    return len(state_dict)


def save_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write the module's full weights to ``path`` (rank 0), so a copied reference survives a resume."""
    state_dict = _full_state_dict(module)
    if not _is_distributed() or torch.distributed.get_rank() == 0:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        tmp = f"{os.fspath(path)}.tmp"
        torch.save(state_dict, tmp)
        os.replace(tmp, path)
    if _is_distributed():
        torch.distributed.barrier()


def load_weights(module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load weights written by :func:`save_weights` (rank 0 reads, the others receive by broadcast)."""
    rank0 = not _is_distributed() or torch.distributed.get_rank() == 0
    found = [os.path.exists(path) if rank0 else None]
    if _is_distributed():
        torch.distributed.broadcast_object_list(found, src=0)  # every rank raises together, none waits forever
    if not found[0]:
        raise EngineOperationError(f"no saved weights at {os.fspath(path)} (on rank 0)")
    state_dict = torch.load(path, map_location="cpu", weights_only=True) if rank0 else {}
    _load_full_state_dict(module, state_dict)


def count_parameters(parameters: Iterable[nn.Parameter]) -> int:
    return sum(p.numel() for p in parameters)
