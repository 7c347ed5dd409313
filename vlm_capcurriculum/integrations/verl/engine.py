"""The driver side of the stage-transition operations for verl 0.9.1: one method per operation.

The stage driver (:mod:`.driver`: the core's stage controller through ``VerlCurriculumEngine``) calls these on the
trainer's process (the ``TaskRunnerV1`` Ray actor). Each either talks to the actor worker group (``trainer.actor_rollout_wg``: methods of
:class:`~vlm_capcurriculum.integrations.verl.worker.CapCurriculumActorRolloutRefWorker` and verl's own
``set_loss_fn``) or uses the trainer itself (checkpoint, validation). The driver's copy of the config is kept in
step with what the workers were told, so verl code that reads it on the driver (``_update_actor`` and friends)
and anything logged from it agree with the workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import open_dict

from .capabilities import Capability, check_overrides, verl_capabilities
from .engine_ops import EngineOperationError
from .loss import LOSS_OVERRIDE_FIELDS, build_actor_loss_fn

if TYPE_CHECKING:
    from .trainer import CapCurriculumTrainer

#: Where, under ``trainer.default_local_dir``, stage checkpoints and reference snapshots go.
CURRICULUM_DIR = "curriculum"


class VerlEngine:
    """Stage-transition operations on a running :class:`CapCurriculumTrainer`."""

    def __init__(self, trainer: CapCurriculumTrainer) -> None:
        self.trainer = trainer
        actor = trainer.config.actor_rollout_ref.actor
        self.loss_values: dict[str, float] = {name: float(actor[key]) for name, key in LOSS_OVERRIDE_FIELDS.items()}
        self.vision_trainable = not bool(actor.get("freeze_vision_tower", False))
        self.validation_requested = False
        self.reference_path: str | None = None

    # ---------------------------------------------------------------- plan time
    @property
    def capabilities(self) -> dict[str, Capability]:
        return verl_capabilities(self.trainer.config)

    def check_overrides(self, overrides: Mapping[str, Any], *, where: str) -> None:
        """Plan-time check: raise naming every override this verl config cannot apply."""
        check_overrides(self.trainer.config, overrides, where=where)

    # ---------------------------------------------------------------- helpers
    def _worker_group(self) -> Any:
        group = getattr(self.trainer, "actor_rollout_wg", None)
        if group is None:
            raise EngineOperationError("the actor worker group does not exist yet (call after trainer.init())")
        return group

    def _curriculum_dir(self, *parts: str) -> str:
        return os.path.join(self.trainer.config.trainer.default_local_dir, CURRICULUM_DIR, *parts)

    @staticmethod
    def _same_on_all_ranks(results: list[Any], what: str) -> Any:
        if not results or any(result != results[0] for result in results[1:]):
            raise EngineOperationError(f"{what}: ranks disagree: {results}")
        return results[0]

    # ---------------------------------------------------------------- operations
    def set_vision_trainable(self, trainable: bool) -> None:
        self._same_on_all_ranks(self._worker_group().cc_set_vision_trainable(trainable), "vision tower")
        self.vision_trainable = trainable

    def set_lr(self, lr: float) -> None:
        self._same_on_all_ranks(self._worker_group().cc_set_lr(float(lr)), "learning rate")
        with open_dict(self.trainer.config):
            self.trainer.config.actor_rollout_ref.actor.optim.lr = float(lr)

    def set_lr_warmup(self, steps_into_stage: int, warmup: int) -> None:
        """The stage's LR warm-up (``warmup`` updates from the stage's first one, ``steps_into_stage`` steps ago)."""
        self._same_on_all_ranks(self._worker_group().cc_set_lr_warmup(steps_into_stage, warmup), "LR warm-up")

    def set_loss(self, **changes: float) -> None:
        """Change any of ``kl_coef``, ``clip_ratio_low``, ``clip_ratio_high``; the others keep their current value."""
        unknown = set(changes) - set(LOSS_OVERRIDE_FIELDS)
        if unknown:
            raise EngineOperationError(f"not loss settings: {sorted(unknown)}")
        values = {**self.loss_values, **{name: float(value) for name, value in changes.items()}}
        self._worker_group().set_loss_fn(build_actor_loss_fn(self.trainer.config, values))
        self.loss_values = values
        with open_dict(self.trainer.config):
            for name, value in values.items():
                self.trainer.config.actor_rollout_ref.actor[LOSS_OVERRIDE_FIELDS[name]] = value

    def set_max_grad_norm(self, max_norm: float) -> None:
        self._same_on_all_ranks(self._worker_group().cc_set_max_grad_norm(float(max_norm)), "max grad norm")
        with open_dict(self.trainer.config):
            self.trainer.config.actor_rollout_ref.actor.optim.clip_grad = float(max_norm)

    def reset_optimizer(self) -> None:
        self._worker_group().cc_reset_optimizer()

    def reference_snapshot_path(self, tag: str) -> str:
        return self._curriculum_dir(f"reference_{tag}.pt")

    def refresh_reference(self, tag: str) -> str:
        """Make the KL reference the current policy. Its weights are also saved (returned path) so that
        :meth:`restore_reference` can rebuild it after a resume: verl never checkpoints the reference model, it
        rebuilds it from ``actor_rollout_ref.model.path`` at start."""
        path = self.reference_snapshot_path(tag)
        self._worker_group().cc_refresh_reference(path)
        self.reference_path = path
        return path

    def restore_reference(self, tag: str) -> None:
        """After a resume inside a stage that refreshed the reference: load the snapshot saved by
        :meth:`refresh_reference` with the same ``tag``."""
        path = self.reference_snapshot_path(tag)
        self._worker_group().cc_load_reference(path)  # rank 0 reads it; an error if it is missing
        self.reference_path = path

    def save_checkpoint(self, tag: str) -> str:
        """A resumable checkpoint at this step (unless verl saves one anyway) plus Hugging Face weights under
        ``<default_local_dir>/curriculum/<tag>/huggingface``; returns that directory."""
        trainer = self.trainer
        if not trainer.verl_saves_checkpoint_at(trainer.global_steps):
            trainer._save_checkpoint()
        local_path = self._curriculum_dir(tag)
        self._worker_group().cc_save_hf_model(local_path, trainer.global_steps)
        return os.path.join(local_path, "huggingface")

    def validate(self) -> None:
        """Validate after this step's weights reach the rollout replicas (the trainer runs it in on_step_end);
        skipped when verl's own ``trainer.test_freq`` validates the same step."""
        self.validation_requested = True

    def state_metrics(self) -> dict[str, float]:
        """What the engine currently applies, for the step's log."""
        return {
            "curriculum/vision_trainable": float(self.vision_trainable),
            "curriculum/kl_coef": self.loss_values["kl_coef"],
            "curriculum/clip_ratio_low": self.loss_values["clip_ratio_low"],
            "curriculum/clip_ratio_high": self.loss_values["clip_ratio_high"],
        }
