"""The stage controller: the framework-free driver of stage transitions.

A trainer calls :meth:`StageController.before_step` before global step ``s`` runs and
:meth:`StageController.after_step` after it finished (steps count from 1, one call pair per step, in order):

* before the first step a controller sees (a fresh run or a resume), it applies the full state of the current
  stage; on a resume *inside* a stage it applies nothing else (the stage's start actions already happened and
  their effect is in the checkpoint);
* before the first step of every later planned stage, it applies that stage's full state, then its start
  actions (``reset_optimizer``, then ``refresh_reference``). The first stage's start actions are skipped at
  step 1: the optimizer is fresh and the reference is the policy there;
* after the last step of a planned stage, it runs the end actions (``save_stage_checkpoint``, then ``validate``).
  End actions of steps completed before a resume are not replayed.

"Full state" means one setter call per operation the plan uses anywhere, in the order of ``overrides.TABLE``, an
unset knob passed as ``None`` (the engine's base value): so a resumed run's engine is in the same state as an
uninterrupted one's.
"""

from __future__ import annotations

from vlm_capcurriculum.curriculum.engine import CurriculumEngine, required_operations, validate_plan_for_engine
from vlm_capcurriculum.curriculum.overrides import END, START, STATE, TABLE, Knob, Operation
from vlm_capcurriculum.curriculum.plan import Plan, PlannedStage


class StepOrderError(RuntimeError):
    """before_step/after_step called out of order: the controller would lose track of the stage."""


class StageController:
    """Knows the stage of every step and applies transitions through a :class:`CurriculumEngine`."""

    def __init__(
        self, plan: Plan, engine: CurriculumEngine, *, completed_steps: int = 0, engine_name: str | None = None
    ) -> None:
        if not 0 <= completed_steps <= plan.total_steps:
            raise ValueError(f"completed_steps {completed_steps} outside 0..{plan.total_steps}")
        validate_plan_for_engine(plan, engine.supported_operations, engine_name=engine_name or type(engine).__name__)
        self.plan = plan
        self.engine = engine
        used = required_operations(plan)
        self._knobs = {
            when: [knob for knob in TABLE if knob.when == when and Operation[knob.operation] in used]
            for when in (STATE, START, END)
        }
        self._next_step = completed_steps + 1
        self._in_step: int | None = None
        self._current: PlannedStage | None = None

    @property
    def current_stage(self) -> PlannedStage | None:
        """The stage of the step in progress or last begun (None before the first :meth:`before_step`)."""
        return self._current

    @property
    def next_step(self) -> int:
        return self._next_step

    @property
    def finished(self) -> bool:
        return self._next_step > self.plan.total_steps

    def before_step(self, step: int) -> PlannedStage:
        """Call before global step ``step`` runs; returns its stage."""
        if self._in_step is not None or step != self._next_step:
            raise StepOrderError(f"before_step({step}) called, expected before_step({self._next_step})")
        stage = self.plan.stage_at(step)
        if self._current is None:
            self.apply_state(stage)
            if step == stage.start_step and step > 1:
                self._actions(START, stage)
        elif stage.position != self._current.position:
            self.apply_state(stage)
            self._actions(START, stage)
        self._current = stage
        self._in_step = step
        return stage

    def after_step(self, step: int) -> None:
        """Call after global step ``step`` finished (its update applied)."""
        if self._in_step != step:
            raise StepOrderError(f"after_step({step}) called, expected after_step({self._in_step or self._next_step})")
        stage = self._current
        assert stage is not None
        self._in_step = None
        self._next_step = step + 1
        if step == stage.end_step:
            self._actions(END, stage)

    def apply_state(self, stage: PlannedStage) -> None:
        """Apply the full knob state of ``stage`` (every knob the plan uses; unset ones as None)."""
        for knob in self._knobs[STATE]:
            self._call(knob, stage)

    def _actions(self, when: str, stage: PlannedStage) -> None:
        for knob in self._knobs[when]:
            if stage.state.flag(knob.fields[0].name):
                self._call(knob, stage)

    def _call(self, knob: Knob, stage: PlannedStage) -> None:
        getattr(self.engine, knob.method)(*knob.arguments(stage))
