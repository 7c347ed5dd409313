"""verl 0.9.1's actor/rollout/ref worker with the curriculum's stage-transition operations (worker side):
``@register(dispatch_mode=ONE_TO_ALL)`` methods, prefixed ``curriculum_``, that the driver's worker group runs on
every rank over verl's ``FSDPEngine`` (``docs/integrations/verl.md``, "Engine operations"). The operations every
backend shares live in :mod:`vlm_capcurriculum.integrations.torch_ops`; here also the reference snapshot a resume
reloads.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn
from verl.single_controller.base.decorator import Dispatch, register
from verl.workers.engine_workers import ActorRolloutRefWorker

from vlm_capcurriculum.integrations import torch_ops
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


class CapCurriculumActorRolloutRefWorker(ActorRolloutRefWorker):
    """``ActorRolloutRefWorker`` plus the engine operations a curriculum stage transition needs."""

    def _actor_engine(self) -> Any:
        if self.actor is None:
            raise EngineOperationError(f"this worker (role {self.role!r}) has no actor model")
        return self.actor.engine

    def _ref_engine(self) -> Any:
        if self.ref is None:
            raise EngineOperationError(
                f"this worker (role {self.role!r}) has no reference model: set actor_rollout_ref.actor.use_kl_loss=true "
                "so verl builds one"
            )
        return self.ref.engine

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_vision_trainable(self, trainable: bool) -> dict[str, Any]:
        engine = self._actor_engine()
        gate = install_vision_gate(engine)
        gate.set_trainable(trainable)
        return {"trainable": trainable, "vision_parameters": sum(p.numel() for p in gate.parameters)}

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr(self, lr: float) -> list[float]:
        engine = self._actor_engine()
        return torch_ops.set_base_lr(engine.optimizer, engine.lr_scheduler, lr)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr_warmup(self, steps_into_stage: int, warmup: int) -> list[float]:
        engine = self._actor_engine()
        return torch_ops.set_stage_warmup(engine.optimizer, engine.lr_scheduler, steps_into_stage, warmup)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_max_grad_norm(self, max_norm: float) -> float:
        # FSDPEngine.optimizer_step reads optimizer_config.clip_grad on every step; it is a mutable field.
        engine = self._actor_engine()
        engine.optimizer_config.clip_grad = float(max_norm)
        return engine.optimizer_config.clip_grad

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_reset_optimizer(self) -> int:
        return torch_ops.reset_optimizer_state(self._actor_engine().optimizer)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_refresh_reference(self, save_path: str | None = None) -> int:
        """Copy the actor's weights into the reference model; optionally keep a copy for resuming."""
        actor, ref = self._actor_engine(), self._ref_engine()
        with actor.eval_mode(), ref.eval_mode():  # load offloaded parameters for the copy
            copied = torch_ops.copy_weights(actor.module, ref.module)
            if save_path:
                save_weights(ref.module, save_path)
        return copied

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_load_reference(self, path: str) -> None:
        ref = self._ref_engine()
        with ref.eval_mode():
            load_weights(ref.module, path)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_save_hf_model(self, local_path: str, global_step: int) -> str:
        """Write the actor as a Hugging Face model under ``local_path/huggingface`` with verl's own checkpoint
        manager, saving only ``hf_model`` and leaving the manager's rotation of resumable checkpoints untouched."""
        engine = self._actor_engine()
        manager = engine.checkpoint_manager
        contents, previous = manager.checkpoint_save_contents, list(manager.previous_saved_paths)
        previous_step = getattr(manager, "previous_global_step", None)
        manager.checkpoint_save_contents = ["hf_model"]
        try:
            engine.save_checkpoint(local_path, None, global_step, None)
        finally:
            manager.checkpoint_save_contents = contents
            manager.previous_saved_paths = previous
            if previous_step is not None:
                manager.previous_global_step = previous_step
        return f"{local_path}/huggingface"
