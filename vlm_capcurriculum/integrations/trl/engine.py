"""The curriculum engine protocol on a live :class:`~.trainer.CurriculumGRPOTrainer`: each operation acts on the
object TRL or transformers actually reads, at the time it reads it (the table in ``docs/integrations/trl.md``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from trl.models import prepare_deepspeed, prepare_fsdp
from trl.trainer.utils import add_fused_lm_head, create_model_from_path, disable_dropout_in_model

from vlm_capcurriculum.checkpoints import require_complete, seal, unseal
from vlm_capcurriculum.curriculum import EngineBase, Operation, PlannedStage
from vlm_capcurriculum.curriculum.run_layout import stage_dir
from vlm_capcurriculum.curriculum.warmup import warmup_steps
from vlm_capcurriculum.integrations.torch_ops import (
    copy_weights,
    reset_optimizer_state,
    set_base_lr,
    set_stage_warmup,
    vision_tower,
)
from vlm_capcurriculum.models.processors import save_processor

from .rewards import ACCURACY, FORMAT, reward_weights, unknown_reward_settings

if TYPE_CHECKING:
    from .trainer import CurriculumGRPOTrainer

logger = logging.getLogger(__name__)

SUPPORTED_OPERATIONS = frozenset(Operation) - {Operation.rollout_n}


@dataclass(frozen=True)
class BaseValues:
    """What ``None`` means for each knob: the values the run was configured with."""

    lr: float
    kl_coef: float
    clip_ratio_low: float
    clip_ratio_high: float
    max_grad_norm: float
    rollout_temperature: float
    reward_kwargs: Mapping[str, Any] = field(default_factory=dict)
    lr_warmup_ratio: float = 0.0


class WeightLoadError(RuntimeError):
    """Saved weights that do not match the model tensor for tensor."""


def load_weights_strict(model: torch.nn.Module, source: str | os.PathLike[str]) -> None:
    """Copy the weights saved in ``source`` into ``model`` (same class), every tensor, for the reference and the
    trainer's resume. The Trainer's ``load_state_dict(strict=False)`` would silently keep stale weights: Qwen2.5-VL and
    InternVL save under release key names that only ``from_pretrained`` maps back. Costs one extra host copy."""
    saved = type(model).from_pretrained(os.fspath(source), dtype=model.dtype, local_files_only=True)
    state = saved.state_dict()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightLoadError(f"{source}: the saved weights do not match {type(model).__name__}: {err}") from err
    finally:
        del saved, state


class TRLEngine(EngineBase):
    """The :class:`~vlm_capcurriculum.curriculum.CurriculumEngine` of a :class:`CurriculumGRPOTrainer`."""

    supported_operations = SUPPORTED_OPERATIONS

    def __init__(self, trainer: CurriculumGRPOTrainer, base: BaseValues) -> None:
        self.trainer = trainer
        self.base = base
        self.reference_source: str | None = None  # None: the base model (TRL's reference)
        self._head_temperature = trainer.temperature
        self._warmup_ratio = base.lr_warmup_ratio  # the current stage's (set_lr_warmup)

    # ------------------------------------------------------------------ knobs

    @property
    def policy(self) -> torch.nn.Module:
        return self.trainer.accelerator.unwrap_model(self.trainer.model)

    def set_vision_tower_trainable(self, trainable: bool | None) -> None:
        vision_tower(self.policy).requires_grad_(True if trainable is None else trainable)

    def set_lr(self, lr: float | None) -> None:
        set_base_lr(self.trainer.optimizer, self.trainer.lr_scheduler, self.base.lr if lr is None else lr)

    def set_lr_warmup(self, ratio: float | None, stage: PlannedStage) -> None:
        self._warmup_ratio = self.base.lr_warmup_ratio if ratio is None else ratio
        self._restart_warmup(stage)

    def _restart_warmup(self, stage: PlannedStage) -> None:
        """The stage's warm-up, counted from its first optimizer step (also right after a resume inside it)."""
        updates = self.trainer.updates_per_step
        steps_into_stage = (self.trainer.curriculum_step - stage.start_step) * updates
        warmup = warmup_steps(self._warmup_ratio, stage.steps, updates)
        set_stage_warmup(self.trainer.optimizer, self.trainer.lr_scheduler, steps_into_stage, warmup)

    def set_kl_coef(self, kl_coef: float | None) -> None:
        value = self.base.kl_coef if kl_coef is None else kl_coef
        if value != 0.0 and self.trainer.ref_model is None:
            self.trainer.ref_model = self._build_reference()
        self.trainer.beta = value

    def set_clip_ratio(self, low: float | None, high: float | None) -> None:
        self.trainer.epsilon_low = self.base.clip_ratio_low if low is None else low
        self.trainer.epsilon_high = self.base.clip_ratio_high if high is None else high

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None:
        self.trainer.args.max_grad_norm = self.base.max_grad_norm if max_grad_norm is None else max_grad_norm

    def set_rollout_temperature(self, temperature: float | None) -> None:
        value = self.base.rollout_temperature if temperature is None else temperature
        trainer = self.trainer
        trainer.temperature = value
        if trainer.use_vllm:
            trainer.vllm_generation.temperature = value
        else:
            trainer.generation_config.temperature = value
            trainer.generation_kwargs["temperature"] = value
        if value != self._head_temperature:
            # The fused head divides the logits by the temperature it was built with; a new head on top handles every
            # fused call (the previous ones only see unfused calls, which they pass through).
            policy = self.policy
            add_fused_lm_head(
                policy.get_base_model() if hasattr(policy, "peft_config") else policy,
                temperature=value,
                cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32,
                outputs=("log_probs", "entropy"),
            )
            if trainer.ref_model is not None:
                add_fused_lm_head(
                    trainer.accelerator.unwrap_model(trainer.ref_model),
                    temperature=value,
                    cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32,
                )
            self._head_temperature = value

    def set_reward_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        merged = {**self.base.reward_kwargs, **kwargs}
        unknown = unknown_reward_settings(merged)
        if unknown:
            raise ValueError(f"unknown reward setting {unknown[0]!r}")
        format_weight = merged.pop("format_weight", None)
        trainer = self.trainer
        if format_weight is not None:
            trainer.reward_weights[ACCURACY], trainer.reward_weights[FORMAT] = reward_weights(float(format_weight))
        current = trainer.reward_funcs[ACCURACY]
        function = current.func if isinstance(current, functools.partial) else current
        trainer.reward_funcs[ACCURACY] = functools.partial(function, **merged)

    # ------------------------------------------------------------------ start actions

    def reset_optimizer(self) -> None:
        optimizer = getattr(self.trainer.optimizer, "optimizer", self.trainer.optimizer)  # accelerate's wrapper
        reset_optimizer_state(optimizer)
        self._restart_warmup(self.trainer.plan.stage_at(self.trainer.curriculum_step))

    def refresh_reference(self) -> None:
        trainer = self.trainer
        step = trainer.curriculum_step
        # A refresh runs at a stage start, so the previous stage ended at step - 1: its checkpoint (if it saved one)
        # holds exactly the weights the reference becomes; otherwise they are saved here.
        source = trainer.stage_checkpoints.get(trainer.plan.stage_at(step - 1).position)
        if source is None:
            source = str(self._save_policy(Path(trainer.args.output_dir) / "reference" / f"after-step-{step - 1}"))
        self.reference_source = source
        if trainer.ref_model is not None:
            copy_weights(self.policy, trainer.accelerator.unwrap_model(trainer.ref_model))
        logger.info("KL reference refreshed to the policy after step %d (weights: %s)", step - 1, source)

    def _save_policy(self, path: Path, stage_files: dict[str, str] | None = None) -> Path:
        """The policy in ``path``, sealed (a re-save in a resumed run unseals first); a stage checkpoint also gets
        the processor and its ``stage_files`` (name -> text)."""
        if self.trainer.accelerator.is_main_process:
            if path.is_dir():
                unseal(path)
            self.policy.save_pretrained(path)
            if stage_files is not None:
                save_processor(self.trainer.processing_class, path)
                for name, text in stage_files.items():
                    (path / name).write_text(text, encoding="utf-8")
            seal(path)
        self.trainer.accelerator.wait_for_everyone()
        return path

    def _build_reference(self) -> torch.nn.Module:
        """A reference model like the one ``GRPOTrainer.__init__`` builds, from the current reference weights."""
        trainer = self.trainer
        policy = self.policy
        source = self.reference_source or policy.config._name_or_path
        if not source:
            raise RuntimeError(
                "kl_coef becomes non-zero but the policy was not loaded from a path, so there is no reference to load"
            )
        kwargs = dict(trainer.args.model_init_kwargs or {})
        kwargs.setdefault("dtype", policy.dtype)
        kwargs.setdefault("attn_implementation", policy.config._attn_implementation)
        if trainer.args.distributed_state.distributed_type in ("MULTI_GPU", "DEEPSPEED"):
            kwargs["device_map"] = None
        reference = create_model_from_path(source, **kwargs)
        if trainer.args.disable_dropout:
            disable_dropout_in_model(reference)
        if trainer.args.cast_lm_head_to_fp32:
            reference.lm_head.float()
        add_fused_lm_head(
            reference, temperature=trainer.temperature, cast_lm_head_to_fp32=trainer.args.cast_lm_head_to_fp32
        )
        if trainer.is_deepspeed_enabled:
            return prepare_deepspeed(reference, trainer.accelerator)
        if trainer.is_fsdp_enabled:
            return prepare_fsdp(reference, trainer.accelerator)
        return trainer.accelerator.prepare_model(reference, evaluation_mode=True)

    def restore_reference(self, source: str | None) -> None:
        """After a resume: the reference is again the weights at ``source`` (None: the base model)."""
        self.reference_source = source
        if source is not None and self.trainer.ref_model is not None:
            require_complete(source)  # a damaged reference is an error here, not a wrong KL term later
            load_weights_strict(self.trainer.accelerator.unwrap_model(self.trainer.ref_model), source)

    # ------------------------------------------------------------------ end actions

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None:
        trainer = self.trainer
        info = {"stage": stage.to_json(), "position": stage.position, "step": step,
                "optimizer_step": trainer.state.global_step}  # fmt: skip
        files = {"curriculum_stage.json": json.dumps(info, indent=2) + "\n", "README.md": trainer.model_card(stage, step)}
        path = self._save_policy(stage_dir(trainer.args.output_dir, stage.position, stage.name), files)
        trainer.stage_checkpoints[stage.position] = str(path)
        logger.info("stage %r checkpoint after step %d: %s", stage.name, step, path)

    def validate(self, stage: PlannedStage, step: int) -> None:
        metrics = self.trainer.run_validation(stage, step)
        self.trainer.validations[stage.position] = metrics
