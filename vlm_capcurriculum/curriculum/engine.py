"""The engine protocol: what a framework integration implements so the stage controller can drive it.

One method per operation. Setters take the stage's value or ``None``, and ``None`` always means *the engine's
configured base value* (what the run was launched with): an engine remembers its base values when it is built.
An engine declares what it can do in :attr:`CurriculumEngine.supported_operations`; a plan that needs anything
else fails :func:`validate_plan_for_engine` before training starts, instead of being silently ignored.

Contract for implementers:

* setters are idempotent and may be called again with the same value (after a resume, at every stage start);
* ``set_vision_tower_trainable(False)`` must stop the vision tower's updates *including* weight decay;
* ``reset_optimizer()`` clears the optimizer state (moments) and restarts the LR schedule's warm-up;
* ``refresh_reference()`` makes the KL reference a copy of the current policy; if the framework's checkpoints do
  not include the reference weights, the engine must save them itself so a resumed run keeps the same reference;
* ``save_stage_checkpoint`` and ``validate`` run after the stage's last step has been applied;
* methods of unsupported operations are never called (:class:`EngineBase` gives raising defaults).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from vlm_capcurriculum.curriculum.overrides import KNOB_OF, OPERATION_OF_FIELD, Operation

if TYPE_CHECKING:
    from vlm_capcurriculum.curriculum.plan import Plan, PlannedStage


@runtime_checkable
class CurriculumEngine(Protocol):
    @property
    def supported_operations(self) -> frozenset[Operation]: ...

    def set_vision_tower_trainable(self, trainable: bool | None) -> None: ...

    def set_lr(self, lr: float | None) -> None: ...

    def set_lr_warmup(self, ratio: float | None, stage: PlannedStage) -> None:
        """A linear warm-up over ``warmup_steps(ratio, stage.steps)`` steps from ``stage.start_step`` (lr x 0 at the
        stage's first step, as EasyR1's and verl's schedules), then the constant lr. Depends only on the stage, so
        calling it again after a resume inside the stage changes nothing."""
        ...

    def set_kl_coef(self, kl_coef: float | None) -> None: ...

    def set_clip_ratio(self, low: float | None, high: float | None) -> None: ...

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None: ...

    def set_rollout_temperature(self, temperature: float | None) -> None: ...

    def set_rollout_n(self, n: int | None) -> None: ...

    def set_reward_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        """The reward's keyword arguments on top of the configured ones (``{}`` = the configured ones)."""
        ...

    def reset_optimizer(self) -> None: ...

    def refresh_reference(self) -> None: ...

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None: ...

    def validate(self, stage: PlannedStage, step: int) -> None: ...


class EngineBase:
    """Optional base: every operation raises until overridden. Set ``supported_operations`` to what you override."""

    supported_operations: frozenset[Operation] = frozenset()

    def _unsupported(self, operation: Operation) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not support {operation.value}")


def _raising(operation: Operation) -> Any:
    def method(self: EngineBase, *args: Any) -> None:
        self._unsupported(operation)

    return method


for _operation, _knob in KNOB_OF.items():
    setattr(EngineBase, _knob.method, _raising(_operation))


class UnsupportedOverrideError(ValueError):
    """The plan needs operations the engine does not support. ``problems`` lists each (stage, field) at fault."""

    def __init__(self, problems: list[str], engine_name: str) -> None:
        self.problems = problems
        super().__init__(
            f"the {engine_name} engine cannot honour {len(problems)} override(s): "
            + "; ".join(problems)
            + " (remove them from the recipe or use a backend that supports them)"
        )


def _needs(plan: Plan) -> Iterator[tuple[PlannedStage, str, Any, Operation]]:
    """(stage, field, value, operation) of every override a planned stage needs (an action switched off needs none)."""
    for stage in plan.stages:
        for name, value in stage.state.set_fields().items():
            if value is not False:
                yield stage, name, value, OPERATION_OF_FIELD[name]


def required_operations(plan: Plan) -> frozenset[Operation]:
    """The operations some planned stage needs (a knob set, or an action switched on)."""
    return frozenset(operation for *_, operation in _needs(plan))


def validate_plan_for_engine(
    plan: Plan, supported: Collection[Operation] | CurriculumEngine, *, engine_name: str = "backend"
) -> None:
    """Raise :class:`UnsupportedOverrideError` naming every stage and override the engine cannot honour."""
    if not isinstance(supported, Collection):
        engine_name = type(supported).__name__ if engine_name == "backend" else engine_name
        supported = supported.supported_operations
    allowed = frozenset(Operation(op) for op in supported)
    problems: dict[tuple[str, str], str] = {}  # stitched_replay repeats stages: report each once
    for stage, name, value, operation in _needs(plan):
        if operation not in allowed:
            problems.setdefault(
                (stage.name, name), f"stage {stage.name!r} (from step {stage.start_step}) sets {name}={value!r}"
            )
    if problems:
        raise UnsupportedOverrideError(list(problems.values()), engine_name)
