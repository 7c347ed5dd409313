"""Torch operations every backend shares at a stage boundary: the vision tower and stopping its updates, resetting
the optimizer, changing a ``LambdaLR``'s rates, copying full weights between plain or sharded models. Plain torch
and no transformers import: one module serves TRL, verl (transformers 5, FSDP2) and EasyR1 (transformers 4.57, FSDP1).

"The vision tower" follows EasyR1's ``freeze_vision_tower`` (``verl/workers/fsdp_workers.py``, used by the reference
recipes): ``model.model.visual``, which in Qwen2.5-VL/Qwen3-VL holds the ViT *and* the merger into the LM. InternVL
splits the same pieces over ``model.model.vision_tower`` and ``model.model.multi_modal_projector`` (its ``mlp1``), so
its tower is both: "vision frozen" means everything between the pixels and the LM's input embeddings on every family.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, set_model_state_dict
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP1
from torch.utils.hooks import RemovableHandle

from vlm_capcurriculum.curriculum.warmup import install_stage_warmup

# model class name -> dotted paths (from the ForConditionalGeneration root) of the modules that make up the tower.
VISION_TOWER_PATHS: dict[str, tuple[str, ...]] = {
    "Qwen2_5_VLForConditionalGeneration": ("model.visual",),
    "Qwen3VLForConditionalGeneration": ("model.visual",),
    "InternVLForConditionalGeneration": ("model.vision_tower", "model.multi_modal_projector"),
}


def unwrap_model(module: nn.Module) -> nn.Module:
    """The Hugging Face model inside FSDP1 (``_fsdp_wrapped_module``) and PEFT wrappers (FSDP2 wraps in place)."""
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


@dataclass(frozen=True)
class VisionTower:
    """The modules between pixels and the LM's input embeddings, with their parameter-name prefixes in the model."""

    prefixes: tuple[str, ...]
    modules: tuple[nn.Module, ...]

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters under their full names in the model (as in ``model.named_parameters()``)."""
        for prefix, module in zip(self.prefixes, self.modules, strict=True):
            for name, param in module.named_parameters():
                yield f"{prefix}.{name}", param

    def parameters(self) -> Iterator[nn.Parameter]:
        for _, param in self.named_parameters():
            yield param

    def owns(self, parameter_name: str) -> bool:
        """Whether a full parameter name of the model belongs to the tower."""
        return any(parameter_name == p or parameter_name.startswith(p + ".") for p in self.prefixes)

    def requires_grad_(self, requires_grad: bool = True) -> None:
        """Freeze (``False``) or unfreeze (``True``) every tower parameter."""
        for module in self.modules:
            module.requires_grad_(requires_grad)


def vision_tower(model: nn.Module) -> VisionTower:
    """The vision tower of a Qwen2.5-VL, Qwen3-VL or InternVL(3/3.5) model, tiny or real, plain or wrapped."""
    model = unwrap_model(model)
    # FSDP2's fully_shard makes a subclass named FSDP<class>, so the class hierarchy is searched.
    for cls in type(model).__mro__:
        paths = VISION_TOWER_PATHS.get(cls.__name__)
        if paths is not None:
            return VisionTower(prefixes=paths, modules=tuple(model.get_submodule(path) for path in paths))
    raise TypeError(
        f"no known vision tower layout for {type(model).__name__}: vision-tower stages need one of the "
        f"supported vision-language model classes: {', '.join(sorted(VISION_TOWER_PATHS))}"
    )


def _map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], value: Any) -> Any:
    """``value`` (a module output: tensor, namedtuple, tuple/list, dict or ModelOutput) with ``fn`` applied to each
    tensor in it."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(_map_tensors(fn, item) for item in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, item) for item in value)
    if isinstance(value, Mapping):  # dict and transformers ModelOutput
        return type(value)(**{key: _map_tensors(fn, item) for key, item in value.items()})
    return value


class _ZeroGradient(torch.autograd.Function):
    """Identity forward (bit for bit), zero gradient backward."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(grad)


def _zero_gradient(tensor: torch.Tensor) -> torch.Tensor:
    return _ZeroGradient.apply(tensor) if tensor.requires_grad else tensor


class VisionTowerGate:
    """Stops and restarts the vision tower's updates while its parameters stay in the optimizer (built before a
    stage can say "frozen"; verl and FSDP own ``requires_grad`` after wrapping).

    While frozen, (1) a forward hook detaches each tower module's output: the rest of the model gets exactly a frozen
    tower's gradients and the grad-norm clip sees none; (2) an optimizer step pre-hook sets the tower's ``.grad`` to
    None, so AdamW skips it (no decay, moments or step count). FSDP1 flat parameters may mix tower and text weights,
    which no optimizer can half-skip, so they are refused. Under FSDP1 (EasyR1) the hook passes a zero gradient back
    instead: a unit whose forward ran but backward did not breaks FSDP1's next state dict on a one-rank run.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.tower = vision_tower(model)
        self.optimizer = optimizer
        self.parameters = [param for param in self.tower.parameters() if param.requires_grad]
        where = " + ".join(self.tower.prefixes)
        # torch.distributed.fsdp._flat_param.FlatParameter (private) sets `_is_flat_param`.
        if any(type(p).__name__ == "FlatParameter" or getattr(p, "_is_flat_param", False) for p in self.parameters):
            raise ValueError(
                f"the vision tower ({where}) is held in FSDP1 flat parameters that may also hold text-model "
                "weights, so its updates cannot be stopped alone: wrap the actor with use_orig_params=true "
                "(EasyR1: worker.actor.fsdp.use_orig_params=true; verl: actor_rollout_ref.actor.strategy=fsdp2 or "
                "actor_rollout_ref.actor.fsdp_config.use_orig_params=true)"
            )
        if not self.parameters:
            raise ValueError(
                f"the vision tower ({where}) has no trainable parameters: it was frozen at start "
                "(EasyR1: worker.actor.model.freeze_vision_tower=true), and the optimizer was built without it. "
                "Start with it trainable to freeze it per stage."
            )
        in_optimizer = {id(param) for group in optimizer.param_groups for param in group["params"]}
        missing = sum(id(param) not in in_optimizer for param in self.parameters)
        if missing:
            raise ValueError(f"{missing} vision-tower parameters are not in the optimizer; cannot gate them")
        # FSDP1 saves an optimizer only if each flat parameter's trainable members all have state or none has.
        self._fill_state = isinstance(model, FSDP1)
        hook = _zero_gradient if isinstance(model, FSDP1) else torch.Tensor.detach
        self._hook_output = functools.partial(_map_tensors, hook)
        self._param_ids = {id(param) for param in self.parameters}
        self._handles: list[RemovableHandle] = []
        self._filling = False
        self.steps_gated = 0

    @property
    def trainable(self) -> bool:
        return not self._handles

    def set_trainable(self, trainable: bool) -> None:
        if trainable == self.trainable:
            return
        if trainable:
            for handle in self._handles:
                handle.remove()
            self._handles = []
            return
        self.fill_missing_state()
        self._handles = [
            module.register_forward_hook(lambda _module, _args, output: self._hook_output(output))
            for module in self.tower.modules
        ]
        self._handles.append(self.optimizer.register_step_pre_hook(self._drop_tower_grads))

    def fill_missing_state(self) -> int:
        """Under FSDP1, give tower parameters without optimizer state the state the optimizer would create lazily;
        returns how many. FSDP1's optimizer state dict refuses a flat parameter whose trainable members have state
        only in part, so a tower frozen before it ever stepped would make every save fail. One zero-gradient,
        zero-lr step over these parameters, its step count taken back, leaves exactly the first real step's
        starting state (moments zero, step 0) and the weights untouched.
        """
        optimizer = self.optimizer
        missing = [param for param in self.parameters if not optimizer.state.get(param)] if self._fill_state else []
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
        self.steps_gated += 1


def reset_optimizer_state(optimizer: torch.optim.Optimizer) -> int:
    """Forget Adam moments and step counts as a fresh optimizer would (param groups and LR schedule stay); returns
    how many parameters had state. Run it before a step's update, never between an update and a checkpoint save:
    saving an optimizer with no state makes torch (``_init_optim_state``) create step-1 state."""
    count = len(optimizer.state)
    optimizer.state.clear()
    return count


def set_base_lr(optimizer: torch.optim.Optimizer, scheduler: Any, lr: float) -> list[float]:
    """Make ``lr`` the base (peak) learning rate from now on; returns the rates in effect for the next update.

    The schedulers are ``LambdaLR`` (lr = base_lr x factor(step)): moving the base rates keeps a warm-up or decay in
    progress at its position, param groups keep their ratios to the first, and ``base_lrs`` is in the scheduler's
    checkpointed ``state_dict``, so a resumed run keeps the new rate."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a finite number > 0, got {lr!r}")
    lr = float(lr)
    groups = optimizer.param_groups
    if scheduler is None:
        for group in groups:
            group["lr"] = lr
        return [group["lr"] for group in groups]
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if lambdas is None:
        raise TypeError(
            f"cannot change the learning rate of a {type(scheduler).__name__}; only LambdaLR schedulers "
            "(verl's and EasyR1's constant and cosine schedules) are supported"
        )
    first = scheduler.base_lrs[0]
    scheduler.base_lrs = [lr * (base / first) if first else lr for base in scheduler.base_lrs]
    for group, base, factor in zip(groups, scheduler.base_lrs, lambdas, strict=True):
        group["initial_lr"] = base
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in groups]  # torch private: what get_last_lr() returns
    return list(scheduler._last_lr)


def set_stage_warmup(
    optimizer: torch.optim.Optimizer, scheduler: Any, steps_into_stage: int, warmup: int
) -> list[float]:
    """The stage's LR warm-up (``lr_warmup_ratio`` knob): ``warmup`` updates of linear warm-up from the stage's first
    update, ``steps_into_stage`` scheduler steps ago (more than 0 after a resume inside it); returns the rates now.
    It replaces the schedule's factors, so the backends allow it only over a constant schedule without warm-up."""
    if scheduler is None:
        raise TypeError("a per-stage LR warm-up needs the engine's LR scheduler; this engine has none")
    return install_stage_warmup(optimizer, scheduler, start=scheduler.last_epoch - steps_into_stage, warmup=warmup)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@contextlib.contextmanager
def _on_collective_device(module: nn.Module) -> Iterator[None]:
    """Keep ``module`` on a device the process group can communicate on while its shards are gathered or broadcast.

    NCCL alone cannot move CPU tensors: a CPU-offloaded module (verl's FSDP2 reference) moves to the GPU for the
    collective and back, each buffer to where it was (as verl's ``fsdp2_load_full_state_dict`` does)."""
    if not is_distributed():
        yield
        return
    supported = dist.distributed_c10d._device_capability()  # device types the default group can communicate on
    param_device = next(module.parameters()).device
    if param_device.type in supported:
        yield
        return
    buffer_devices = {name: buf.device for name, buf in module.named_buffers()}
    module.to(torch.device(supported[0]))
    try:
        yield
    finally:
        module.to(param_device)
        for name, buf in module.named_buffers():
            if buf.device != buffer_devices.get(name, buf.device):
                buf.data = buf.data.to(buffer_devices[name])


def gather_full_state_dict(module: nn.Module) -> dict[str, torch.Tensor]:
    """Full (unsharded) weights on CPU on rank 0 and an empty dict elsewhere; collective on every rank.

    ``cpu_offload`` only on accelerators (the full model never sits in accelerator memory): on CPU, torch 2.13's
    FSDP1 full-state-dict path crashes (SIGSEGV in ``_full_post_state_dict_hook``) when asked to offload CPU
    tensors. On a plain CPU model the tensors may share the live parameters' storage.
    """
    with _on_collective_device(module):
        on_accelerator = any(param.device.type != "cpu" for param in module.parameters())
        options = StateDictOptions(full_state_dict=True, cpu_offload=on_accelerator)
        state = get_model_state_dict(module, options=options)
    if not on_accelerator and is_distributed() and dist.get_rank() != 0:
        return {}  # without cpu_offload every rank receives the full copy; keep the contract of rank 0 only
    return state


def load_full_weights(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load full weights given on rank 0 (an empty dict elsewhere) into a plain or sharded module, every tensor,
    strictly (dtypes may differ); collective: rank 0 broadcasts into the other ranks' shards."""
    broadcast = is_distributed() and dist.get_world_size() > 1
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=broadcast, strict=True)
    with _on_collective_device(module):
        set_model_state_dict(module, state_dict, options=options)


def copy_weights(source: nn.Module, target: nn.Module) -> int:
    """Make ``target`` (the KL reference) a copy of ``source``, every tensor, strictly; returns the number of
    tensors copied (on rank 0). Through rank 0's full CPU copy, so dtype, wrapping, sharding and device may differ
    (EasyR1's reference is bf16 FSDP1, verl's may be CPU-offloaded FSDP2); collective."""
    state_dict = gather_full_state_dict(source)
    load_full_weights(target, state_dict)
    return len(state_dict)
