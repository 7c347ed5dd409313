"""The stage driver for verl (``curriculum.driver``): the core's :class:`StageController` over :class:`VerlEngine`.

:func:`stage_driver` is the factory ``CapCurriculumTrainer`` calls in its constructor, before any worker exists:
it plans the curriculum (:mod:`.planning`), checks the plan against this verl config (every stage's overrides with
verl's own reasons, then the core's operation check) and returns a :class:`CurriculumStageDriver`. The trainer
calls the driver from verl's v1 hooks (see :mod:`.trainer`):

* ``on_train_begin(N)`` at the first step ``N`` this process runs: builds the controller with ``N - 1`` completed
  steps; after a resume inside the plan it also reloads the KL reference of the last ``refresh_reference`` before
  the checkpoint (verl rebuilds the reference from the base model on start);
* ``on_step_begin(N)`` after the step's rollout: ``StageController.before_step`` applies the stage's state (on the
  first step of a process, or at a stage start) and the start actions;
* ``on_step_end(N, metrics)`` after the actor update: ``StageController.after_step`` runs the stage-end actions;
  returns ``curriculum/stage`` (1-based, as in the plan table), ``curriculum/stage_step`` (1-based) and, per reward
  key ``reward/<k>`` of the step, ``stage/<stage name>/reward/<k>`` (this step) and
  ``stage/<stage name>/reward_mean/<k>`` (mean over the stage's steps run by this process so far).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from vlm_capcurriculum.curriculum import (
    EngineBase,
    Plan,
    PlannedStage,
    StageController,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.warmup import warmup_steps

from .capabilities import ENGINE_NAME, UnsupportedOverrideError, check_overrides, supported_operations
from .layout import RunLayout
from .planning import check_run_shape, load_plan

if TYPE_CHECKING:
    from .engine import VerlEngine


def stage_tag(stage: PlannedStage) -> str:
    """A file-name-safe tag unique to a planned stage (reference snapshots, stage checkpoints): ``02_text_reasoning``."""
    name = re.sub(r"[^\w.-]+", "_", stage.name).strip("._") or "stage"
    return f"{stage.position + 1:02d}_{name}"


def check_plan(plan: Plan, config: DictConfig) -> None:
    """Plan-time check of every planned stage against this verl config: verl's reasons for each override it cannot
    apply (:func:`check_overrides`), then the core's check against :func:`supported_operations`."""
    problems = []
    seen: set[tuple[str, str]] = set()
    for stage in plan.stages:
        fields = stage.state.set_fields()
        key = (stage.name, repr(sorted(fields.items())))
        if key in seen:  # stitched_replay repeats stages
            continue
        seen.add(key)
        try:
            check_overrides(config, fields, where=f"stage {stage.name!r} (steps {stage.start_step}-{stage.end_step})")
        except UnsupportedOverrideError as error:
            problems.extend(error.problems)
    if problems:
        raise UnsupportedOverrideError(problems, ENGINE_NAME)
    validate_plan_for_engine(plan, supported_operations(config), engine_name=ENGINE_NAME)


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
            return stage_tag(stage)
    return None


class VerlCurriculumEngine(EngineBase):
    """The core's ``CurriculumEngine`` on a running verl trainer, through :class:`VerlEngine`.

    ``None`` from the controller means the configured base value, read from the trainer's config when the engine is
    built (the trainer's constructor, before any stage changed it). Loss knobs are sent to the workers only when
    they change (each change rebuilds and ships the loss function)."""

    def __init__(self, engine: VerlEngine) -> None:
        self.verl = engine
        config = engine.trainer.config
        actor = config.actor_rollout_ref.actor
        self.supported_operations = supported_operations(config)
        self.base_vision_trainable = engine.vision_trainable
        self.base_lr = float(actor.optim.lr)
        # a plan that sets the warm-up is allowed only without verl's own (capabilities.py): the base is then 0
        self.base_lr_warmup_ratio = float(actor.optim.get("lr_warmup_steps_ratio") or 0.0)
        self.base_max_grad_norm = float(actor.optim.clip_grad)
        self.base_loss = dict(engine.loss_values)
        self.stage: PlannedStage | None = None  # set by the driver before each controller call
        self.step: int | None = None  # the global step in progress, set with ``stage``
        self.layout: RunLayout | None = None  # the common output layout, when curriculum.output_dir is set

    def set_vision_tower_trainable(self, trainable: bool | None) -> None:
        self.verl.set_vision_trainable(self.base_vision_trainable if trainable is None else bool(trainable))

    def set_lr(self, lr: float | None) -> None:
        self.verl.set_lr(self.base_lr if lr is None else lr)

    def set_lr_warmup(self, ratio: float | None, stage: PlannedStage) -> None:
        if self.step is None:
            raise RuntimeError("set_lr_warmup outside a step")
        value = self.base_lr_warmup_ratio if ratio is None else ratio
        self.verl.set_lr_warmup(self.step - stage.start_step, warmup_steps(value, stage.steps))

    def _set_loss(self, **values: float | None) -> None:
        wanted = {name: self.base_loss[name] if value is None else float(value) for name, value in values.items()}
        changed = {name: value for name, value in wanted.items() if self.verl.loss_values[name] != value}
        if changed:
            self.verl.set_loss(**changed)

    def set_kl_coef(self, kl_coef: float | None) -> None:
        self._set_loss(kl_coef=kl_coef)

    def set_clip_ratio(self, low: float | None, high: float | None) -> None:
        self._set_loss(clip_ratio_low=low, clip_ratio_high=high)

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None:
        self.verl.set_max_grad_norm(self.base_max_grad_norm if max_grad_norm is None else max_grad_norm)

    def reset_optimizer(self) -> None:
        self.verl.reset_optimizer()

    def refresh_reference(self) -> None:
        if self.stage is None:
            raise RuntimeError("refresh_reference outside a stage")
        self.verl.refresh_reference(stage_tag(self.stage))

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None:
        hf_dir = self.verl.save_checkpoint(stage_tag(stage))
        if self.layout is not None:
            self.layout.export_stage(stage, hf_dir)

    def validate(self, stage: PlannedStage, step: int) -> None:
        self.verl.validate()


class CurriculumStageDriver:
    """The ``StageDriver`` the trainer calls (see the module docstring)."""

    def __init__(self, plan: Plan, engine: VerlCurriculumEngine) -> None:
        self.plan = plan
        self.engine = engine
        self.controller: StageController | None = None
        self._reward_sums: dict[str, float] = {}
        self._reward_steps: dict[str, int] = {}
        self._summed_stage: int | None = None

    def on_train_begin(self, global_step: int) -> None:
        completed = global_step - 1
        if self.engine.layout is not None:
            self.engine.layout.start(completed)
        self.controller = StageController(self.plan, self.engine, completed_steps=completed, engine_name=ENGINE_NAME)
        tag = reference_tag_to_restore(self.plan, completed)
        if tag is not None:
            self.engine.verl.restore_reference(tag)

    def on_step_begin(self, global_step: int) -> None:
        if self.controller is None:
            raise RuntimeError("on_step_begin before on_train_begin")
        self.engine.stage, self.engine.step = self.plan.stage_at(global_step), global_step
        self.controller.before_step(global_step)

    def on_step_end(self, global_step: int, metrics: Mapping[str, Any]) -> dict[str, float]:
        if self.controller is None:
            raise RuntimeError("on_step_end before on_train_begin")
        stage = self.plan.stage_at(global_step)
        self.engine.stage = stage
        self.controller.after_step(global_step)  # stage end: the stage folder is written here
        if self.engine.layout is not None:
            self.engine.layout.log_step(global_step, metrics)
        return {
            "curriculum/stage": float(stage.position + 1),
            "curriculum/stage_step": float(global_step - stage.start_step + 1),
            **self._reward_metrics(stage, metrics),
        }

    def _reward_metrics(self, stage: PlannedStage, metrics: Mapping[str, Any]) -> dict[str, float]:
        if self._summed_stage != stage.position:
            self._summed_stage = stage.position
            self._reward_sums, self._reward_steps = {}, {}
        out: dict[str, float] = {}
        for name, value in metrics.items():
            if not name.startswith("reward/") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            key = name[len("reward/") :]
            self._reward_sums[key] = self._reward_sums.get(key, 0.0) + float(value)
            self._reward_steps[key] = self._reward_steps.get(key, 0) + 1
            out[f"stage/{stage.name}/reward/{key}"] = float(value)
            out[f"stage/{stage.name}/reward_mean/{key}"] = self._reward_sums[key] / self._reward_steps[key]
        return out


def stage_driver(curriculum: Any, engine: VerlEngine) -> CurriculumStageDriver:
    """The driver factory (``curriculum.driver``): plan, check the plan against the verl config, build the driver."""
    data, plan = load_plan(curriculum)
    config = engine.trainer.config
    check_run_shape(plan, config)
    check_plan(plan, config)
    curriculum_engine = VerlCurriculumEngine(engine)
    output_dir = curriculum.get("output_dir") if curriculum is not None else None
    if output_dir:
        curriculum_engine.layout = RunLayout(output_dir, plan, data)
    return CurriculumStageDriver(plan, curriculum_engine)
