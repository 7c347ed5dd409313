"""The core's curriculum engine on a running :class:`~.trainer.CapCurriculumTrainer` (the stage controller calls it).

Each operation is a call on the actor worker group (the ``curriculum_*`` methods of :mod:`.worker`, verl's own
``set_loss_fn``) or on the trainer (checkpoint, validation). ``None`` from the controller means the configured base
value, read from the config when the engine is built (before any stage changed it). The trainer's copy of the config
is kept in step with what the workers were told, so verl code that reads it on the driver and the logs agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from vlm_capcurriculum.curriculum import EngineBase, Plan, PlannedStage
from vlm_capcurriculum.curriculum.warmup import warmup_steps

from .layout import RunLayout
from .planning import file_tag
from .support import supported_operations
from .worker import EngineOperationError

if TYPE_CHECKING:
    from .trainer import CapCurriculumTrainer

#: Where, under ``trainer.default_local_dir``, stage checkpoints and reference snapshots go.
CURRICULUM_DIR = "curriculum"

#: Curriculum override -> field of ``actor_rollout_ref.actor`` that verl's loss function reads.
LOSS_OVERRIDE_FIELDS: dict[str, str] = {
    "kl_coef": "kl_loss_coef",
    "clip_ratio_low": "clip_ratio_low",
    "clip_ratio_high": "clip_ratio_high",
}


def build_actor_loss_fn(config: DictConfig, values: Mapping[str, float]) -> Callable[..., Any]:
    """The actor loss verl's worker builds, with the loss overrides ``values`` applied: ``init_model`` binds a frozen
    ``ActorConfig`` into ``partial(ppo_loss, config=...)`` (or ``distillation_ppo_loss``), so a change means a new
    loss for the worker group's ``set_loss_fn``."""
    from verl.trainer.distillation import is_distillation_enabled
    from verl.utils.config import omega_conf_to_dataclass
    from verl.workers.utils.losses import ppo_loss

    actor = OmegaConf.create(OmegaConf.to_container(config.actor_rollout_ref.actor, resolve=True))
    for name, value in values.items():
        actor[LOSS_OVERRIDE_FIELDS[name]] = float(value)
    actor_config = omega_conf_to_dataclass(actor)
    distillation = config.get("distillation")
    if is_distillation_enabled(distillation):
        from verl.trainer.distillation import distillation_ppo_loss

        return partial(
            distillation_ppo_loss, config=actor_config, distillation_config=omega_conf_to_dataclass(distillation)
        )
    return partial(ppo_loss, config=actor_config)


def reference_tag_to_restore(plan: Plan, completed_steps: int) -> str | None:
    """After a resume from ``global_step_<completed_steps>``: the tag of the reference snapshot in effect then
    (the last stage started by then with ``refresh_reference``), or None when the reference is the base model or
    the next step refreshes it anyway."""
    if completed_steps <= 0 or completed_steps >= plan.total_steps:
        return None
    following = plan.stage_at(completed_steps + 1)
    if following.start_step == completed_steps + 1 and following.state.flag("refresh_reference"):
        return None
    for stage in reversed(plan.stages):
        if 1 < stage.start_step <= completed_steps and stage.state.flag("refresh_reference"):
            return file_tag(stage.position, stage.name)
    return None


class VerlEngine(EngineBase):
    """The core's ``CurriculumEngine`` over verl's actor worker group; loss knobs are shipped only when they change
    (each change rebuilds and ships the loss function)."""

    def __init__(self, trainer: CapCurriculumTrainer, plan: Plan, layout: RunLayout | None = None) -> None:
        self.trainer = trainer
        self.plan = plan
        self.layout = layout  # the common output layout, when curriculum.output_dir is set
        config = trainer.config
        actor = config.actor_rollout_ref.actor
        self.supported_operations = supported_operations(config)
        self.loss_values = {name: float(actor[key]) for name, key in LOSS_OVERRIDE_FIELDS.items()}
        self.base_loss = dict(self.loss_values)
        self.base_vision_trainable = self.vision_trainable = not bool(actor.get("freeze_vision_tower", False))
        self.base_lr = float(actor.optim.lr)
        # a plan that sets the warm-up is allowed only without verl's own (support.py): the base is then 0
        self.base_lr_warmup_ratio = float(actor.optim.get("lr_warmup_steps_ratio") or 0.0)
        self.base_max_grad_norm = float(actor.optim.clip_grad)
        self.validation_requested = False

    # ---------------------------------------------------------------- helpers
    def _call(self, method: str, *args: Any, agree: bool = False) -> None:
        """``method`` on every rank of the actor worker group; with ``agree``, every rank must return the same."""
        results = getattr(self.trainer.actor_rollout_wg, method)(*args)
        if agree and (not results or any(result != results[0] for result in results[1:])):
            raise EngineOperationError(f"{method}: ranks disagree: {results}")

    def _set_config(self, values: Mapping[str, Any]) -> None:
        with open_dict(self.trainer.config):
            for key, value in values.items():
                OmegaConf.update(self.trainer.config, key, value)

    def _curriculum_dir(self, *parts: str) -> str:
        return os.path.join(self.trainer.config.trainer.default_local_dir, CURRICULUM_DIR, *parts)

    # ---------------------------------------------------------------- the core's operations
    def set_vision_tower_trainable(self, trainable: bool | None) -> None:
        trainable = self.base_vision_trainable if trainable is None else bool(trainable)
        self._call("curriculum_set_vision_trainable", trainable, agree=True)
        self.vision_trainable = trainable

    def set_lr(self, lr: float | None) -> None:
        lr = self.base_lr if lr is None else float(lr)
        self._call("curriculum_set_lr", lr, agree=True)
        self._set_config({"actor_rollout_ref.actor.optim.lr": lr})

    def set_lr_warmup(self, ratio: float | None, stage: PlannedStage) -> None:
        """The stage's warm-up: ``warmup_steps(ratio, stage.steps)`` updates from the stage's first one."""
        ratio = self.base_lr_warmup_ratio if ratio is None else ratio
        steps_into_stage = self.trainer.global_steps - stage.start_step
        self._call("curriculum_set_lr_warmup", steps_into_stage, warmup_steps(ratio, stage.steps), agree=True)

    def _set_loss(self, **changes: float | None) -> None:
        wanted = {**self.loss_values}
        wanted.update({name: self.base_loss[name] if v is None else float(v) for name, v in changes.items()})
        if wanted == self.loss_values:
            return
        self._call("set_loss_fn", build_actor_loss_fn(self.trainer.config, wanted))
        self.loss_values = wanted
        self._set_config({f"actor_rollout_ref.actor.{LOSS_OVERRIDE_FIELDS[n]}": v for n, v in wanted.items()})

    def set_kl_coef(self, kl_coef: float | None) -> None:
        self._set_loss(kl_coef=kl_coef)

    def set_clip_ratio(self, low: float | None, high: float | None) -> None:
        self._set_loss(clip_ratio_low=low, clip_ratio_high=high)

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None:
        max_norm = self.base_max_grad_norm if max_grad_norm is None else float(max_grad_norm)
        self._call("curriculum_set_max_grad_norm", max_norm, agree=True)
        self._set_config({"actor_rollout_ref.actor.optim.clip_grad": max_norm})

    def reset_optimizer(self) -> None:
        self._call("curriculum_reset_optimizer")

    def refresh_reference(self) -> None:
        """Make the KL reference the current policy, and save its weights for :meth:`restore_reference`: verl never
        checkpoints the reference model, it rebuilds it from ``actor_rollout_ref.model.path`` at start."""
        stage = self.plan.stage_at(self.trainer.global_steps)
        path = self._curriculum_dir(f"reference_{file_tag(stage.position, stage.name)}.pt")
        self._call("curriculum_refresh_reference", path)

    def restore_reference(self, tag: str) -> None:
        """After a resume inside a stage that refreshed the reference: load the snapshot of that refresh."""
        self._call("curriculum_load_reference", self._curriculum_dir(f"reference_{tag}.pt"))  # rank 0 reads it

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None:
        """A resumable checkpoint at this step (unless verl saves one anyway), then the Hugging Face weights under
        ``<default_local_dir>/curriculum/<tag>/huggingface``, copied into the run layout's stage folder."""
        trainer = self.trainer
        if not trainer.verl_saves_checkpoint_at(trainer.global_steps):
            trainer._save_checkpoint()
        local_path = self._curriculum_dir(file_tag(stage.position, stage.name))
        self._call("curriculum_save_hf_model", local_path, trainer.global_steps)
        if self.layout is not None:
            self.layout.export_stage(stage, os.path.join(local_path, "huggingface"))

    def validate(self, stage: PlannedStage, step: int) -> None:
        """Validate after this step's weights reach the rollout replicas (the trainer runs it in on_step_end);
        skipped when verl's own ``trainer.test_freq`` validates the same step."""
        self.validation_requested = True

    def state_metrics(self) -> dict[str, float]:
        """What the engine currently applies, for the step's log."""
        return {
            "curriculum/vision_trainable": float(self.vision_trainable),
            **{f"curriculum/{name}": value for name, value in self.loss_values.items()},
        }
