"""Stage overrides: the knobs a stage may change when it starts, and the actions around it, declared once in
:data:`TABLE`.

An :class:`Overrides` value is a *layer*: every field is optional and ``None`` means "not set here". A stage's
state is the stack ``run-wide → capability_overrides[capability] → stage`` flattened by :meth:`Overrides.layered`,
later layers winning field by field (``reward`` kwargs merge key by key). A knob that no layer sets keeps the
engine's configured base value: a stage that does not mention ``lr`` trains with the base lr even if the stage
before it changed it. So every stage's state is fully determined by the spec, and a resumed run can re-apply it.

``lr_warmup_ratio`` (the warm-up restarts at each stage's first step) and ``refresh_reference`` do what each of the
reference's chained per-stage EasyR1 runs did. Everything else about a knob (fields, schema, engine operation,
dispatch) follows from :data:`TABLE`: a new knob is one row here, its method in ``engine.CurriculumEngine``, and
its implementation in each backend.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from vlm_capcurriculum.curriculum.plan import PlannedStage


class VisionTower(str, Enum):
    """Whether the vision encoder is updated during a stage."""

    trainable = "trainable"
    frozen = "frozen"


class OverrideError(ValueError):
    """An override value out of its range; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


# ------------------------------------------------------------------------------------ value checks
# A check returns the value as stored (normalised) or raises the message of an OverrideError.


def _number(*, zero: bool = False, below_one: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"must be a number, got {value!r}")
        if value < 0 or (value == 0 and not zero):
            raise ValueError(f"must be {'>= 0' if zero else '> 0'}, got {value!r}")
        if below_one and value >= 1:
            raise ValueError(f"must be < 1, got {value!r}")
        return value

    return check


def _must_be(expected: str, ok: Callable[[Any], bool], convert: Callable[[Any], Any] = lambda value: value) -> Any:
    def check(value: Any) -> Any:
        if not ok(value):
            raise ValueError(f"must be {expected}, got {value!r}")
        return convert(value)

    return check


_count = _must_be(
    "an integer >= 1", lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 1
)
_tower = _must_be("'trainable' or 'frozen'", lambda value: value in ("trainable", "frozen"), VisionTower)
_flag = _must_be("true or false", lambda value: isinstance(value, bool))
_kwargs = _must_be(
    "a mapping of reward keyword arguments",
    lambda value: isinstance(value, Mapping) and all(isinstance(key, str) for key in value),
    dict,
)


# ------------------------------------------------------------------------------------ the table

STATE, START, END = "state", "start", "end"


@dataclass(frozen=True)
class Field:
    """One override key: its value type (OmegaConf schema) and the check that normalises a set value."""

    name: str
    type: Any
    check: Callable[[Any], Any]


@dataclass(frozen=True)
class Knob:
    """A knob or action: the override fields it reads and the engine method that applies it.

    ``when``: ``state`` knobs are re-applied at every stage start and resume (unset = ``None``, the engine's base
    value); ``start`` actions run at a later stage's first step, ``end`` actions after a stage's last step, each
    only when its flag is true. ``args`` turns the stage into the method's arguments; by default the fields'
    values (state), nothing (start) or ``(stage, stage.end_step)`` (end).
    """

    operation: str
    method: str
    when: str
    fields: tuple[Field, ...]
    args: Callable[[Overrides, PlannedStage], tuple[Any, ...]] | None = None

    @property
    def value(self) -> str:
        """The :class:`Operation` value: the override field that needs it, or the operation's name for several."""
        return self.fields[0].name if len(self.fields) == 1 else self.operation

    def arguments(self, stage: PlannedStage) -> tuple[Any, ...]:
        if self.args is not None:
            return self.args(stage.state, stage)
        if self.when == STATE:
            return tuple(getattr(stage.state, field.name) for field in self.fields)
        return () if self.when == START else (stage, stage.end_step)


def _knob(name: str, method: str, kind: Any, check: Callable[[Any], Any], operation: str = "", **args: Any) -> Knob:
    return Knob(operation or name, method, STATE, (Field(name, kind, check),), **args)


def _action(name: str, method: str, when: str) -> Knob:
    return Knob(name, method, when, (Field(name, bool, _flag),))


#: Every knob and action, in the order the controller applies them (see controller.py).
TABLE: tuple[Knob, ...] = (
    _knob(
        "vision_tower",
        "set_vision_tower_trainable",
        VisionTower,
        _tower,
        args=lambda state, _: (None if state.vision_tower is None else state.vision_tower is VisionTower.trainable,),
    ),
    _knob("lr", "set_lr", float, _number()),
    _knob(
        "lr_warmup_ratio",
        "set_lr_warmup",
        float,
        _number(zero=True, below_one=True),
        operation="lr_warmup",
        args=lambda state, stage: (state.lr_warmup_ratio, stage),
    ),
    _knob("kl_coef", "set_kl_coef", float, _number(zero=True)),
    Knob(
        "clip_ratio",
        "set_clip_ratio",
        STATE,
        (Field("clip_ratio_low", float, _number(below_one=True)), Field("clip_ratio_high", float, _number())),
    ),
    _knob("max_grad_norm", "set_max_grad_norm", float, _number()),
    _knob("rollout_temperature", "set_rollout_temperature", float, _number()),
    _knob("rollout_n", "set_rollout_n", int, _count),
    _knob("reward", "set_reward_kwargs", dict[str, Any], _kwargs, args=lambda state, _: (dict(state.reward or {}),)),
    _action("reset_optimizer", "reset_optimizer", START),
    _action("refresh_reference", "refresh_reference", START),
    _action("save_checkpoint", "save_stage_checkpoint", END),
    _action("validate", "validate", END),
)

#: An engine operation; the value is the override field (or fields) that need it.
Operation = Enum("Operation", [(knob.operation, knob.value) for knob in TABLE], type=str, module=__name__)  # type: ignore[misc]
KNOB_OF: dict[Any, Knob] = {Operation[knob.operation]: knob for knob in TABLE}
#: override field -> the operation that honours it
OPERATION_OF_FIELD: dict[str, Any] = {field.name: Operation[knob.operation] for knob in TABLE for field in knob.fields}


def _names(when: str) -> tuple[str, ...]:
    return tuple(field.name for knob in TABLE if knob.when == when for field in knob.fields)


KNOBS, START_ACTIONS, END_ACTIONS = _names(STATE), _names(START), _names(END)
FIELDS: tuple[str, ...] = KNOBS + START_ACTIONS + END_ACTIONS
_CHECKS = {field.name: field.check for knob in TABLE for field in knob.fields}


class _Layer:
    """The methods of :class:`Overrides` (whose fields come from :data:`TABLE`)."""

    def __post_init__(self) -> None:
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            if value is not None:
                try:
                    object.__setattr__(self, name, check(value))
                except ValueError as err:
                    raise OverrideError(name, str(err)) from None

    def layered(self, *later: Overrides) -> Overrides:
        """This layer with ``later`` layers on top: their set fields win; ``reward`` kwargs merge by key."""
        values = {name: getattr(self, name) for name in FIELDS}
        for layer in later:
            for name in FIELDS:
                value = getattr(layer, name)
                if value is None:
                    continue
                if name == "reward" and values["reward"] is not None:
                    value = {**values["reward"], **value}
                values[name] = value
        return Overrides(**values)

    def set_fields(self) -> dict[str, Any]:
        """The fields that are set, as plain JSON values (``vision_tower`` as its string)."""
        out: dict[str, Any] = {}
        for name in FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, VisionTower):
                value = value.value
            elif isinstance(value, Mapping):
                value = dict(value)
            out[name] = value
        return out

    def knobs(self) -> dict[str, Any]:
        """The state knobs that are set (no actions)."""
        return {name: value for name, value in self.set_fields().items() if name in KNOBS}

    def flag(self, action: str) -> bool:
        """Whether a start/end action is on (unset means off)."""
        if action not in START_ACTIONS + END_ACTIONS:
            raise KeyError(action)
        return bool(getattr(self, action))


def _dataclass(name: str, doc: str, **options: Any) -> Any:
    """A dataclass with every field of :data:`TABLE` as ``Optional[type] = None`` (OmegaConf needs ``Optional``)."""
    fields = [(f.name, Optional[f.type], dataclasses.field(default=None)) for knob in TABLE for f in knob.fields]  # noqa: UP045
    return dataclasses.make_dataclass(name, fields, namespace={"__doc__": doc, "__module__": __name__}, **options)


OverridesConfig = _dataclass("OverridesConfig", "OmegaConf schema of an ``overrides:`` block (unknown keys fail).")
Overrides = _dataclass(
    "Overrides",
    "One layer of overrides, or (after ``layered``) a stage's complete state. ``None`` = not set.",
    bases=(_Layer,),
    frozen=True,
)
NO_OVERRIDES = Overrides()
