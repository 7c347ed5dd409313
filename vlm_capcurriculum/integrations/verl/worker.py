"""verl 0.9.1's actor/rollout/ref worker with the curriculum's stage-transition operations.

The v1 trainer runs ``verl.workers.engine_workers.ActorRolloutRefWorker`` (not the legacy ``fsdp_workers``): it
holds ``self.actor`` and ``self.ref``, each a ``TrainingWorker`` whose ``.engine`` is an ``FSDPEngine`` (or another
``BaseEngine``), and ``self.rollout``. Methods decorated with ``@register(dispatch_mode=Dispatch.ONE_TO_ALL)`` become
calls on the driver's worker group that run on every rank and return one result per rank.

:class:`~vlm_capcurriculum.integrations.verl.trainer.CapCurriculumTrainer` puts this class in place of
``ActorRolloutRefWorker`` in its role-to-worker mapping. All methods are prefixed ``cc_`` to stay clear of verl's.
"""

from __future__ import annotations

from typing import Any

from verl.single_controller.base.decorator import Dispatch, register
from verl.workers.engine_workers import ActorRolloutRefWorker

from vlm_capcurriculum.integrations import torch_ops

from . import engine_ops
from .engine_ops import EngineOperationError


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
    def cc_set_vision_trainable(self, trainable: bool) -> dict[str, Any]:
        engine = self._actor_engine()
        gate = engine_ops.install_vision_gate(engine)
        gate.set_trainable(trainable)
        return {"trainable": trainable, "vision_parameters": engine_ops.count_parameters(gate.parameters)}

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_set_lr(self, lr: float) -> list[float]:
        engine = self._actor_engine()
        return engine_ops.set_learning_rate(engine.optimizer, engine.lr_scheduler, lr)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_set_lr_warmup(self, steps_into_stage: int, warmup: int) -> list[float]:
        engine = self._actor_engine()
        return engine_ops.set_stage_warmup(engine.optimizer, engine.lr_scheduler, steps_into_stage, warmup)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_set_max_grad_norm(self, max_norm: float) -> float:
        # FSDPEngine.optimizer_step reads optimizer_config.clip_grad on every step; it is a mutable field.
        engine = self._actor_engine()
        engine.optimizer_config.clip_grad = float(max_norm)
        return engine.optimizer_config.clip_grad

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_reset_optimizer(self) -> int:
        return torch_ops.reset_optimizer_state(self._actor_engine().optimizer)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_refresh_reference(self, save_path: str | None = None) -> int:
        """Copy the actor's weights into the reference model; optionally keep a copy for resuming."""
        actor, ref = self._actor_engine(), self._ref_engine()
        with actor.eval_mode(), ref.eval_mode():  # load offloaded parameters for the copy
            copied = torch_ops.copy_weights(actor.module, ref.module)
            if save_path:
                engine_ops.save_weights(ref.module, save_path)
        return copied

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_load_reference(self, path: str) -> None:
        ref = self._ref_engine()
        with ref.eval_mode():
            engine_ops.load_weights(ref.module, path)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def cc_save_hf_model(self, local_path: str, global_step: int) -> str:
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
