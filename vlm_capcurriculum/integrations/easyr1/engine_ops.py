"""Stage-boundary operations on the objects EasyR1's FSDP worker owns: model, optimizer, LR scheduler, configs.

Plain functions and one small class over torch objects, so the lane tests run them on a real (tiny) FSDP model,
a real AdamW and EasyR1's own LambdaLR; worker_mixin.py only routes driver calls to them.

Freezing the vision tower mid-run. EasyR1's ``freeze_vision_tower`` sets ``requires_grad=False`` before FSDP
wrapping and builds the optimizer from trainable parameters only, so a tower frozen at start can never be
unfrozen. We therefore start with the tower trainable and, while a stage wants it frozen, (1) replace the
tower's output in a forward hook by its value with a zero gradient, so the tower's gradients are zeros (the rest
of the model gets exactly the gradients it would get with a frozen tower and the grad-norm clip sees no tower
gradient; the tower's backward still runs, because torch's FSDP1 leaves a unit whose forward ran but whose
backward did not with its parameters unregistered on a one-rank NO_SHARD run, which breaks the next state dict:
found with InternVL's ViT layers; in stage 2 the tower only sees the text-only batches' dummy image), and (2) set the tower parameters' ``.grad`` to None in an optimizer step pre-hook, so AdamW skips
them entirely: no weight decay, no moment update, no step count. Tower parameters that never had optimizer
state get the state a first step would create (see ``VisionTowerGate.fill_missing_state``), because FSDP
cannot save an optimizer whose flat-parameter members have state only in part. This needs FSDP ``use_orig_params=True``:
with flat parameters a FlatParameter may hold tower and text weights together (the root unit holds
``visual.patch_embed`` and ``visual.merger`` next to the embeddings), and the optimizer could not skip half
of it. With ``use_orig_params=True`` FSDP writes a None ``.grad`` of an original parameter back as zeros in
its flat gradient (``FlatParamHandle._writeback_orig_params``), which is what we want.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    set_model_state_dict,
)
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.hooks import RemovableHandle

from vlm_capcurriculum.curriculum.warmup import install_stage_warmup

from .private_api import LIVE_ACTOR_KNOBS


def unwrap(module: nn.Module) -> nn.Module:
    """The Hugging Face model inside a root FSDP module (or the module itself)."""
    return module.module if isinstance(module, FSDP) else module


def find_vision_tower(model: nn.Module) -> tuple[nn.Module, ...]:
    """The modules between pixels and the LM: the project's definition for the families it knows
    (``vlm_capcurriculum.models.vision``: InternVL's InternViT *and* projector), otherwise where EasyR1's freeze
    looks (``model.model.visual`` or ``model.visual``: Qwen2-VL, Qwen3-VL-MoE)."""
    inner = unwrap(model)
    from vlm_capcurriculum.models.vision import known_class_name, vision_tower

    if known_class_name(inner) is not None:
        return vision_tower(inner).modules
    language_and_vision = getattr(inner, "model", None)
    if language_and_vision is not None and isinstance(getattr(language_and_vision, "visual", None), nn.Module):
        return (language_and_vision.visual,)
    if isinstance(getattr(inner, "visual", None), nn.Module):
        return (inner.visual,)
    raise ValueError(
        f"{type(inner).__name__} has no vision tower at `model.visual` or `visual`: a curriculum stage cannot "
        "freeze or unfreeze it (text-only model, or an architecture EasyR1 does not support)"
    )


class _ZeroGradient(torch.autograd.Function):
    """Identity forward (bit for bit), zero gradient backward."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad)


def _zero_gradient(value: Any) -> Any:
    """The same value, through which only a zero gradient flows back (see the module doc)."""
    if isinstance(value, torch.Tensor):
        return _ZeroGradient.apply(value) if value.requires_grad else value
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_zero_gradient(item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_zero_gradient(item) for item in value)
    if isinstance(value, Mapping):  # dict and transformers ModelOutput
        return type(value)(**{key: _zero_gradient(item) for key, item in value.items()})
    return value


def _is_flat_parameter(param: torch.Tensor) -> bool:
    # torch.distributed.fsdp._flat_param.FlatParameter (private); its class sets `_is_flat_param`.
    return type(param).__name__ == "FlatParameter" or bool(getattr(param, "_is_flat_param", False))


class VisionTowerGate:
    """Stops and restarts the vision tower's updates without taking it out of the optimizer (see module doc)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.tower = find_vision_tower(model)
        self.optimizer = optimizer
        self.params = [param for module in self.tower for param in module.parameters() if param.requires_grad]
        if not self.params:
            raise ValueError(
                "the vision tower has no trainable parameters: it was frozen at start "
                "(worker.actor.model.freeze_vision_tower=true), and EasyR1 then leaves it out of the optimizer "
                "for good. Start with it trainable to freeze it per stage."
            )
        flat = [param for param in self.params if _is_flat_parameter(param)]
        if flat:
            raise ValueError(
                "the actor is FSDP-wrapped with use_orig_params=False, so the optimizer holds flat parameters "
                "that mix vision-tower and text-model weights and cannot skip the tower alone: set "
                "worker.actor.fsdp.use_orig_params=true (config.enable_runtime_vision_toggle does this)"
            )
        in_optimizer = {id(param) for group in optimizer.param_groups for param in group["params"]}
        missing = sum(id(param) not in in_optimizer for param in self.params)
        if missing:
            raise ValueError(f"{missing} vision-tower parameters are not in the optimizer; cannot gate them")
        self._param_ids = {id(param) for param in self.params}
        self._forward_handles: list[RemovableHandle] = []
        self._step_handle: RemovableHandle | None = None
        self._filling = False

    @property
    def trainable(self) -> bool:
        return not self._forward_handles

    def set_trainable(self, trainable: bool) -> None:
        if trainable == self.trainable:
            return
        if trainable:
            assert self._forward_handles and self._step_handle is not None
            for handle in self._forward_handles:
                handle.remove()
            self._step_handle.remove()
            self._forward_handles, self._step_handle = [], None
            return
        self.fill_missing_state()
        self._forward_handles = [
            module.register_forward_hook(lambda _module, _args, output: _zero_gradient(output)) for module in self.tower
        ]
        self._step_handle = self.optimizer.register_step_pre_hook(self._drop_tower_grads)

    def fill_missing_state(self) -> int:
        """Give tower parameters without optimizer state the state the optimizer would create lazily.

        Needed because FSDP's optimizer-state-dict conversion (EasyR1's checkpoint save goes through
        ``get_state_dict``) refuses a flat parameter whose trainable members have state only in part, and the
        root FSDP unit mixes tower weights with text weights: a tower frozen before it ever stepped (first
        stage frozen, or frozen right after ``reset_optimizer``) would make every save fail. We let the
        optimizer build the state itself with one zero-gradient, zero-lr step over these parameters only,
        then take back the step count, which leaves exactly what the first real step would have created
        (Adam moments zero, step 0) and the weights untouched (lr 0 also zeroes decoupled weight decay).
        Returns how many parameters were filled.
        """
        optimizer = self.optimizer
        missing = [param for param in self.params if not optimizer.state.get(param)]
        if not missing:
            return 0
        stashed = {}
        for group in optimizer.param_groups:
            for param in group["params"]:
                if param.grad is not None:
                    stashed[param] = param.grad
                    param.grad = None
        rates = [group["lr"] for group in optimizer.param_groups]
        self._filling = True
        try:
            for group in optimizer.param_groups:
                group["lr"] = torch.zeros_like(group["lr"]) if isinstance(group["lr"], torch.Tensor) else 0.0
            for param in missing:
                param.grad = torch.zeros_like(param)
            optimizer.step()
        finally:
            self._filling = False
            for group, rate in zip(optimizer.param_groups, rates, strict=True):
                group["lr"] = rate
            for param in missing:
                param.grad = None
            for param, grad in stashed.items():
                param.grad = grad
        for param in missing:
            state = optimizer.state[param]
            if "step" in state:
                state["step"] -= 1
        return len(missing)

    def _drop_tower_grads(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        if self._filling:
            return
        for group in optimizer.param_groups:
            for param in group["params"]:
                if id(param) in self._param_ids:
                    param.grad = None


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


def set_stage_warmup(
    optimizer: torch.optim.Optimizer, scheduler: Any, steps_into_stage: int, warmup: int
) -> list[float]:
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


def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> int:
    """Forget Adam moments and step counts (as a fresh optimizer would); returns how many states were dropped.

    The learning-rate schedule is not touched: change it with :func:`set_base_lr`. Call
    ``VisionTowerGate.fill_missing_state`` afterwards while the tower is frozen. Run it before the step's update,
    never between an update and a checkpoint save: saving an optimizer with no state at all makes torch
    (``_init_optim_state``) create step-1 state with a zero-gradient step.
    """
    dropped = len(optimizer.state)
    optimizer.state.clear()
    return dropped


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy every weight of ``source`` into ``target`` (both FSDP over the same mesh; dtypes may differ).

    Used to refresh the KL reference from the actor. Goes through sharded state dicts, so flat-parameter
    layouts may differ (the actor is fp32 with use_orig_params, the reference bf16 without).
    """
    state = get_model_state_dict(source)
    set_model_state_dict(target, state, options=StateDictOptions(strict=True))


def gather_full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) weights on CPU on rank 0 and an empty dict elsewhere; collective on every rank.

    On GPUs each gathered tensor is moved to CPU as it comes (``cpu_offload``), so the full model never sits in
    GPU memory. For a model already on CPU that option is skipped: torch 2.13's FSDP1 full-state-dict path
    crashes (SIGSEGV in the clone of ``_full_post_state_dict_hook``) when asked to offload CPU tensors across
    ranks, and there is nothing to offload anyway.
    """
    on_accelerator = any(param.device.type != "cpu" for param in model.parameters())
    options = StateDictOptions(full_state_dict=True, cpu_offload=on_accelerator)
    state = get_model_state_dict(model, options=options)
    if not on_accelerator and dist.is_initialized() and dist.get_rank() != 0:
        return {}  # without cpu_offload every rank receives the full copy; keep the contract of rank 0 only
    return state


def load_full_weights(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load full weights given on rank 0 (an empty dict elsewhere) into an FSDP module; collective.

    Used on resume to rebuild a reference that a stage refreshed: EasyR1 checkpoints only the actor, so the
    reference comes back as the base model unless we reload the stage-start weights (the previous stage's
    exported model directory).
    """
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=True)
    set_model_state_dict(model, state_dict, options=options)
