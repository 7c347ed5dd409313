"""Engine operations on the objects EasyR1's FSDP worker owns, as ``curriculum_*`` methods the driver calls
(``Dispatch.ONE_TO_ALL``: every rank runs it, the per-rank results come back). The mixin must be the first base of
the worker class (worker.py): ``create_colocated_worker_cls`` subclasses ``cls.__ray_actor_class__.__base__`` and
calls ``super().__init__()`` without arguments, which a plain ``Worker`` accepts and ``FSDPWorker`` does not. Methods
that touch weights load offloaded parameters first, as ``FSDPWorker.save_checkpoint`` does.
"""

from __future__ import annotations

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


def set_actor_knobs(actor_config: Any, knobs: Mapping[str, float]) -> dict[str, float]:
    """Set loss/optimizer knobs on EasyR1's ``ActorConfig``, which DataParallelPPOActor reads on every micro-batch
    (the core's knob table has checked the values); returns the old values."""
    previous = {name: getattr(actor_config, name) for name in knobs}
    for name, value in knobs.items():
        setattr(actor_config, name, float(value))
    return previous


class CurriculumWorkerMixin(Worker):  # type: ignore[misc, valid-type]
    """Stage-boundary operations for the actor (and its reference) of an EasyR1 ``FSDPWorker``."""

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

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_vision_trainable(self, trainable: bool) -> bool:
        """Let the vision tower train, or stop all its updates (gradient, weight decay, Adam moments)."""
        if getattr(self, "_curriculum_gate", None) is None:
            self._curriculum_gate = VisionTowerGate(self.fsdp_module, self.optimizer)
        self._curriculum_gate.set_trainable(bool(trainable))
        return bool(trainable)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr(self, lr: float) -> list[float]:
        """Set the peak learning rate (the scheduler's ``base_lrs``); returns the rates now in effect."""
        return set_base_lr(self.optimizer, self.lr_scheduler, lr)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_lr_warmup(self, steps_into_stage: int, warmup: int) -> list[float]:
        """Start the stage's LR warm-up (counted from the stage's first update); returns the rates now in effect."""
        return set_stage_warmup(self.optimizer, self.lr_scheduler, steps_into_stage, warmup)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_set_actor_knobs(self, knobs: dict[str, float]) -> dict[str, float]:
        """Set kl_coef / clip_ratio_low / clip_ratio_high / max_grad_norm on the live actor config."""
        return set_actor_knobs(self.actor.config, knobs)

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_reset_optimizer(self) -> int:
        """Drop the optimizer's moments and step counts; returns how many parameter states were dropped."""
        dropped = reset_optimizer_state(self.optimizer)
        gate = getattr(self, "_curriculum_gate", None)
        if gate is not None and not gate.trainable:
            gate.fill_missing_state()  # a frozen tower still needs state for FSDP to save the optimizer
        return dropped

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_refresh_reference(self) -> bool:
        """Make the KL reference a copy of the current actor (config.py refuses it without a reference or with LoRA)."""
        with self._curriculum_params_loaded(reference=True):
            copy_weights(self.fsdp_module, self.ref_fsdp_module)
        return True

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_load_reference(self, path: str) -> bool:
        """Load the reference from a model directory (rank 0 reads it and broadcasts): on resume inside a stage that
        refreshed it, as EasyR1 checkpoints only the actor."""
        state_dict = read_hf_weights(path) if dist.get_rank() == 0 else {}
        with self._curriculum_params_loaded(reference=True):
            load_full_weights(self.ref_fsdp_module, state_dict)
        return True

    @register(dispatch_mode=Dispatch.ONE_TO_ALL)
    def curriculum_save_hf_model(self, path: str, dtype: str = "bfloat16", overwrite: bool = False) -> str | None:
        """Write the actor's merged weights + processor as a Hugging Face model directory (rank 0 writes)."""
        with self._curriculum_params_loaded():
            state_dict = gather_full_state_dict(self.fsdp_module)
        written = None
        if dist.get_rank() == 0:
            model = unwrap_model(self.fsdp_module)
            written = str(
                write_hf_model_dir(
                    path,
                    state_dict,
                    model.config,
                    processing_class=self.processor or self.tokenizer,
                    generation_config=getattr(model, "generation_config", None),
                    dtype=DTYPES[dtype],
                    overwrite=overwrite,
                )
            )
        del state_dict
        dist.barrier()
        return written
