"""Engine operations on the objects EasyR1's FSDP worker owns, as ``curriculum_*`` methods the driver calls
(``@register(dispatch_mode=Dispatch.ONE_TO_ALL)``: every rank runs it, the per-rank results come back).

The mixin must be the first base of the worker class (worker.py): ``create_colocated_worker_cls`` subclasses
``cls.__ray_actor_class__.__base__`` and calls ``super().__init__()`` without arguments, which a plain ``Worker``
accepts (as for EasyR1's own ``FSDPWorker``, whose base is ``Worker``) and ``FSDPWorker`` does not. Methods that touch
weights load offloaded parameters first and offload them after, as ``FSDPWorker.save_checkpoint`` does. The
operations every backend shares (optimizer, LambdaLR, weights) are in :mod:`vlm_capcurriculum.integrations.torch_ops`;
the one on EasyR1's ActorConfig is below.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch.distributed as dist
from verl.single_controller.base import Worker
from verl.single_controller.base.decorator import Dispatch, register
from verl.utils.fsdp_utils import load_fsdp_model, offload_fsdp_model

from vlm_capcurriculum.integrations.torch_ops import (
    VisionTowerGate,
    copy_weights,
    gather_full_state_dict,
    load_full_weights,
    reset_optimizer_state,
    set_base_lr,
    set_stage_warmup,
    unwrap_model,
)

from .hf_export import DTYPES, read_hf_weights, write_hf_model_dir

#: Actor-config fields DataParallelPPOActor reads as ``self.config.<knob>`` on every micro-batch (at b44b311).
LIVE_ACTOR_KNOBS = ("kl_coef", "clip_ratio_low", "clip_ratio_high", "clip_ratio_dual", "max_grad_norm")


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


class CurriculumWorkerMixin(Worker):  # type: ignore[misc, valid-type]
    """Stage-boundary operations for the actor (and its reference) of an EasyR1 ``FSDPWorker``."""

    def _curriculum_actor_only(self) -> None:
        if not self._has_actor:
            raise RuntimeError("curriculum engine operations run on the actor worker group (actor_rollout_ref)")

    @contextmanager
    def _curriculum_params_loaded(self, *, reference: bool = False) -> Iterator[None]:
        offloaded = []
        if self._use_param_offload:
            offloaded.append(self.fsdp_module)
        if reference and self._use_ref_param_offload:
            offloaded.append(self.ref_fsdp_module)
        for module in offloaded:
            load_fsdp_model(module)
        try:
            yield
        finally:
            for module in offloaded:
                offload_fsdp_model(module)

    def _curriculum_vision_gate(self) -> VisionTowerGate:
        gate = getattr(self, "_curriculum_gate", None)
        if gate is None:
            gate = VisionTowerGate(self.fsdp_module, self.optimizer)
            self._curriculum_gate = gate
        return gate

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_vision_trainable(self, trainable: bool) -> bool:
        """Let the vision tower train, or stop all its updates (gradient, weight decay, Adam moments)."""
        self._curriculum_actor_only()
        self._curriculum_vision_gate().set_trainable(bool(trainable))
        return bool(trainable)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr(self, lr: float) -> list[float]:
        """Set the peak learning rate (the scheduler's ``base_lrs``); returns the rates now in effect."""
        self._curriculum_actor_only()
        return set_base_lr(self.optimizer, self.lr_scheduler, lr)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr_warmup(self, steps_into_stage: int, warmup: int) -> list[float]:
        """Start the stage's LR warm-up (counted from the stage's first update); returns the rates now in effect."""
        self._curriculum_actor_only()
        return set_stage_warmup(self.optimizer, self.lr_scheduler, steps_into_stage, warmup)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_actor_knobs(self, knobs: dict[str, float]) -> dict[str, float]:
        """Set kl_coef / clip_ratio_low / clip_ratio_high / clip_ratio_dual / max_grad_norm on the live actor config.

        When KL is applied in the reward (``algorithm.use_kl_loss=false``) the coefficient that matters is the
        driver's ``RayPPOTrainer.kl_ctrl.kl_coef``: the trainer sets that one.
        """
        self._curriculum_actor_only()
        return set_actor_knobs(self.actor.config, knobs)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_reset_optimizer(self) -> int:
        """Drop the optimizer's moments and step counts; returns how many parameter states were dropped."""
        self._curriculum_actor_only()
        dropped = reset_optimizer_state(self.optimizer)
        gate = getattr(self, "_curriculum_gate", None)
        if gate is not None and not gate.trainable:
            gate.fill_missing_state()  # a frozen tower still needs state for FSDP to save the optimizer
        return dropped

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_refresh_reference(self) -> bool:
        """Make the KL reference a copy of the current actor."""
        self._curriculum_actor_only()
        if not self._has_ref:
            raise RuntimeError("this run has no reference model (algorithm.disable_kl=true): nothing to refresh")
        if self._is_lora:
            raise RuntimeError(
                "with LoRA the reference is the actor with adapters disabled; refreshing it would mean merging "
                "the adapters into the base weights, which is not supported"
            )
        with self._curriculum_params_loaded(reference=True):
            copy_weights(self.fsdp_module, self.ref_fsdp_module)
        return True

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_load_reference(self, path: str) -> bool:
        """Load the reference from a model directory (rank 0 reads it and broadcasts).

        On resume inside a stage that refreshed its reference: EasyR1 checkpoints only the actor, so the
        reference restarts as the base model; the stage-start weights are the previous stage's export.
        """
        self._curriculum_actor_only()
        if not self._has_ref or self._is_lora:
            raise RuntimeError("this run has no separate reference model to load")
        state_dict = read_hf_weights(path) if dist.get_rank() == 0 else {}
        with self._curriculum_params_loaded(reference=True):
            load_full_weights(self.ref_fsdp_module, state_dict)
        return True

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_save_hf_model(self, path: str, dtype: str = "bfloat16", overwrite: bool = False) -> str | None:
        """Write the actor's merged weights + processor as a Hugging Face model directory (rank 0 writes).

        Keep ``path`` outside ``trainer.save_checkpoint_path/global_step_*``: EasyR1 deletes those folders when
        it rotates checkpoints (``remove_obsolete_ckpt``).
        """
        self._curriculum_actor_only()
        fsdp_module = self.fsdp_module
        with self._curriculum_params_loaded():
            state_dict = gather_full_state_dict(fsdp_module)
        written = None
        if dist.get_rank() == 0:
            model = unwrap_model(fsdp_module)
            processing = self.processor or self.tokenizer
            written = str(
                write_hf_model_dir(
                    path,
                    state_dict,
                    model.config,
                    processing_class=processing,
                    generation_config=getattr(model, "generation_config", None),
                    dtype=DTYPES[dtype],
                    overwrite=overwrite,
                )
            )
        del state_dict
        dist.barrier()
        return written

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_engine_state(self) -> dict[str, Any]:
        """The knobs as the worker sees them now (for metrics and for checking a resumed run)."""
        self._curriculum_actor_only()
        actor_config = self.actor.config
        scheduler = self.lr_scheduler
        gate = getattr(self, "_curriculum_gate", None)
        return {
            "lr": scheduler.get_last_lr()[0],
            "base_lr": scheduler.base_lrs[0],
            "vision_trainable": True if gate is None else gate.trainable,
            **{name: getattr(actor_config, name) for name in LIVE_ACTOR_KNOBS},
            "optimizer_states": len(self.optimizer.state),
        }
