"""The curriculum engine for EasyR1: the core's engine protocol on a running ``CurriculumRayPPOTrainer``.

Each operation is a ``curriculum_*`` call to the actor worker group (:mod:`.worker_mixin`, one result per rank,
checked to agree) or driver-side state (the KL controller, the reward actor, validation).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ray

from vlm_capcurriculum.curriculum import EngineBase, PlannedStage
from vlm_capcurriculum.curriculum.warmup import warmup_steps

from .config import supported_operations
from .layout import StageLayout, has_weights

if TYPE_CHECKING:
    from .trainer import CurriculumRayPPOTrainer


class EngineError(RuntimeError):
    """A stage operation failed or the ranks disagree about its result."""


class EasyR1Engine(EngineBase):
    """Stage operations on a :class:`CurriculumRayPPOTrainer` (after ``init_workers``)."""

    def __init__(self, trainer: CurriculumRayPPOTrainer) -> None:
        config = trainer.config
        actor = config.worker.actor
        self.trainer = trainer
        self.plan = trainer.plan
        self.layout = StageLayout(config.trainer.save_checkpoint_path)
        self.supported_operations = supported_operations(config)
        self._use_kl_loss = bool(config.algorithm.use_kl_loss)
        self.base: dict[str, Any] = {
            "vision_trainable": not actor.model.freeze_vision_tower,  # true in every stage then (config.apply_plan)
            "lr": float(actor.optim.lr),
            "lr_warmup_ratio": float(actor.optim.lr_warmup_ratio),  # 0 when the knob is in use (config.py)
            "kl_coef": float(config.algorithm.kl_coef),
            "clip_ratio_low": float(actor.clip_ratio_low),
            "clip_ratio_high": float(actor.clip_ratio_high),
            "max_grad_norm": float(actor.max_grad_norm),
        }
        # what the workers hold now, for the step's log (a fresh process starts from the configured values)
        self.current: dict[str, Any] = {key: value for key, value in self.base.items() if key != "lr_warmup_ratio"}

    @property
    def _group(self) -> Any:
        return self.trainer.actor_rollout_ref_wg

    @staticmethod
    def _agreed(results: Any, what: str) -> Any:
        results = list(results)
        if not results or any(result != results[0] for result in results[1:]):
            raise EngineError(f"{what}: the ranks disagree: {results}")
        return results[0]

    # ------------------------------------------------------------------------------------------- knobs
    def set_vision_tower_trainable(self, trainable: bool | None) -> None:
        value = self.base["vision_trainable"] if trainable is None else bool(trainable)
        if value != self.current["vision_trainable"]:
            self._agreed(self._group.curriculum_set_vision_trainable(value), "vision tower")
            self.current["vision_trainable"] = value

    def set_lr(self, lr: float | None) -> None:
        value = self.base["lr"] if lr is None else float(lr)
        self._agreed(self._group.curriculum_set_lr(value), "learning rate")
        self.current["lr"] = value

    def set_lr_warmup(self, ratio: float | None, stage: PlannedStage) -> None:
        value = self.base["lr_warmup_ratio"] if ratio is None else float(ratio)
        steps_into_stage = self.trainer.global_step - stage.start_step
        self._agreed(
            self._group.curriculum_set_lr_warmup(steps_into_stage, warmup_steps(value, stage.steps)), "LR warm-up"
        )

    def _set_knobs(self, **knobs: float) -> None:
        self._agreed(self._group.curriculum_set_actor_knobs(knobs), "actor knobs")  # each rank returns the old values
        self.current.update(knobs)

    def set_kl_coef(self, kl_coef: float | None) -> None:
        value = self.base["kl_coef"] if kl_coef is None else float(kl_coef)
        self._set_knobs(kl_coef=value)  # used by the KL loss (algorithm.use_kl_loss=true, the paper's setting)
        if not self._use_kl_loss:
            self.trainer.kl_ctrl.kl_coef = value  # KL in the reward: RayPPOTrainer's FixedKLController

    def set_clip_ratio(self, low: float | None, high: float | None) -> None:
        self._set_knobs(
            clip_ratio_low=self.base["clip_ratio_low"] if low is None else float(low),
            clip_ratio_high=self.base["clip_ratio_high"] if high is None else float(high),
        )

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None:
        self._set_knobs(max_grad_norm=self.base["max_grad_norm"] if max_grad_norm is None else float(max_grad_norm))

    def set_reward_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        """The training reward actor's kwargs (Ray runs this call before the step's ``compute_reward``)."""
        ray.get(self.trainer.reward_fn.set_reward_kwargs.remote(dict(kwargs)))

    # ------------------------------------------------------------------------------------------- actions
    def reset_optimizer(self) -> None:
        """Forget Adam moments and step counts. The LR schedule keeps its position (a stage's own warm-up is the
        ``lr_warmup_ratio`` knob)."""
        self._group.curriculum_reset_optimizer()

    def reference_dir(self, stage: PlannedStage) -> str:
        """Where the reference of ``stage`` (which refreshed it at its start) lives on disk."""
        previous = self.plan.stages[stage.position - 1] if stage.position > 0 else None
        if previous is not None and previous.state.flag("save_checkpoint"):
            return self.layout.stage_model(previous.position, previous.name)
        return self.layout.reference_snapshot(stage.position, stage.name)

    def refresh_reference(self) -> None:
        """The reference becomes the current actor; its weights are kept on disk for a resume inside the stage."""
        stage = self.plan.stage_at(self.trainer.global_step)
        self._agreed(self._group.curriculum_refresh_reference(), "reference refresh")
        path = self.reference_dir(stage)
        if not has_weights(path):  # the previous stage's model directory is written just before (end actions)
            self._group.curriculum_save_hf_model(path, overwrite=True)

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None:
        """A Hugging Face model directory of the weights after ``step``, plus ``stage.json`` describing it."""
        path = self.layout.stage_model(stage.position, stage.name)
        self._group.curriculum_save_hf_model(path, overwrite=True)  # rank 0 writes
        info = {
            "stage": stage.name,
            "capability": stage.capability,
            "position": stage.position,
            "global_step": step,
            "plan_fingerprint": self.plan.fingerprint,
            "model": path,
        }
        with open(self.layout.stage_info(stage.position, stage.name), "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)

    def validate(self, stage: PlannedStage, step: int) -> None:
        """EasyR1's validation of the weights after ``step``, unless EasyR1 validates that step itself (the plan's last
        step, or one ``trainer.val_freq`` divides)."""
        val_freq = self.trainer.config.trainer.val_freq
        if step == self.plan.total_steps or (val_freq > 0 and step % val_freq == 0):
            return
        metrics = self.trainer._validate()
        self.trainer.logger.log(data={**metrics, "curriculum/validated_stage": stage.position}, step=step)

    # ------------------------------------------------------------------------------------------- resume
    def restore_after_resume(self, completed_steps: int) -> list[str]:
        """Bring back what EasyR1's checkpoint lacks after a resume at ``completed_steps``; returns what was done:
        the KL reference inside a stage that refreshed it (EasyR1 rebuilds it from the base model), and the model
        directory of a stage whose last step was checkpointed before its end actions ran (validation is not replayed).
        """
        done: list[str] = []
        plan = self.plan
        if completed_steps <= 0 or completed_steps >= plan.total_steps + 1:
            return done
        finished = plan.stage_at(completed_steps)
        finished_model = self.layout.stage_model(finished.position, finished.name)
        if (
            completed_steps == finished.end_step
            and finished.state.flag("save_checkpoint")
            and not has_weights(finished_model)
        ):
            self.save_stage_checkpoint(finished, completed_steps)
            done.append(f"wrote the missing model directory of stage {finished.name!r}")
        if completed_steps == plan.total_steps:
            return done
        upcoming = plan.stage_at(completed_steps + 1)
        if upcoming.state.flag("refresh_reference") and upcoming.start_step <= completed_steps:
            path = self.reference_dir(upcoming)
            if not has_weights(path):
                raise EngineError(
                    f"cannot restore the KL reference of stage {upcoming.name!r} (refreshed at step "
                    f"{upcoming.start_step}): {path} has no weights"
                )
            self._agreed(self._group.curriculum_load_reference(path), "reference reload")
            done.append(f"reloaded the KL reference of stage {upcoming.name!r} from {path}")
        return done

    def state_metrics(self) -> dict[str, float]:
        """What the engine has applied, for the step's log."""
        return {f"curriculum/{key}": float(value) for key, value in self.current.items()}
