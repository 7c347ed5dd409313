"""Stage overrides: the knobs a stage may change when it starts, and the actions around it.

An :class:`Overrides` value is a *layer*: every field is optional and ``None`` means "not set here". A stage's
state is the stack ``run-wide → capability_overrides[capability] → stage`` flattened by :meth:`Overrides.layered`,
later layers winning field by field (``reward`` kwargs merge key by key). A knob that no layer sets keeps the
engine's configured base value: a stage that does not mention ``lr`` trains with the base lr even if the stage
before it changed it. So every stage's state is fully determined by the spec, and a resumed run can re-apply it.

Knobs (state, re-applied on resume): ``vision_tower``, ``lr``, ``lr_warmup_ratio`` (a linear LR warm-up over that
fraction of the stage's own steps, restarting at the stage's first step: what each of the reference's chained
per-stage runs did with EasyR1's ``lr_warmup_ratio``), ``kl_coef``, ``clip_ratio_low``, ``clip_ratio_high``,
``max_grad_norm``, ``rollout_temperature``, ``rollout_n``, ``reward``.
Actions at stage start: ``reset_optimizer``, ``refresh_reference`` (the KL reference becomes the current policy,
what the paper's chained per-stage runs did implicitly). Actions at stage end: ``save_checkpoint``, ``validate``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Optional

KNOBS: tuple[str, ...] = (
    "vision_tower",
    "lr",
    "lr_warmup_ratio",
    "kl_coef",
    "clip_ratio_low",
    "clip_ratio_high",
    "max_grad_norm",
    "rollout_temperature",
    "rollout_n",
    "reward",
)
START_ACTIONS: tuple[str, ...] = ("reset_optimizer", "refresh_reference")
END_ACTIONS: tuple[str, ...] = ("save_checkpoint", "validate")
FIELDS: tuple[str, ...] = KNOBS + START_ACTIONS + END_ACTIONS


class VisionTower(str, Enum):
    """Whether the vision encoder is updated during a stage."""

    trainable = "trainable"
    frozen = "frozen"


class OverrideError(ValueError):
    """An override value out of its range; ``field`` names it."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass
class OverridesConfig:
    """OmegaConf schema of an ``overrides:`` block (unknown keys are rejected)."""

    vision_tower: Optional[VisionTower] = None  # noqa: UP045 (OmegaConf needs typing.Optional)
    lr: Optional[float] = None  # noqa: UP045
    lr_warmup_ratio: Optional[float] = None  # noqa: UP045
    kl_coef: Optional[float] = None  # noqa: UP045
    clip_ratio_low: Optional[float] = None  # noqa: UP045
    clip_ratio_high: Optional[float] = None  # noqa: UP045
    max_grad_norm: Optional[float] = None  # noqa: UP045
    rollout_temperature: Optional[float] = None  # noqa: UP045
    rollout_n: Optional[int] = None  # noqa: UP045
    reward: Optional[dict[str, Any]] = None  # noqa: UP045
    reset_optimizer: Optional[bool] = None  # noqa: UP045
    refresh_reference: Optional[bool] = None  # noqa: UP045
    save_checkpoint: Optional[bool] = None  # noqa: UP045
    validate: Optional[bool] = None  # noqa: UP045


def _positive(name: str, value: float | None, *, allow_zero: bool = False, below_one: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise OverrideError(name, f"must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise OverrideError(name, f"must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    if below_one and value >= 1:
        raise OverrideError(name, f"must be < 1, got {value!r}")


@dataclass(frozen=True)
class Overrides:
    """One layer of overrides, or (after :meth:`layered`) a stage's complete state. ``None`` = not set."""

    vision_tower: VisionTower | None = None
    lr: float | None = None
    lr_warmup_ratio: float | None = None
    kl_coef: float | None = None
    clip_ratio_low: float | None = None
    clip_ratio_high: float | None = None
    max_grad_norm: float | None = None
    rollout_temperature: float | None = None
    rollout_n: int | None = None
    reward: Mapping[str, Any] | None = None
    reset_optimizer: bool | None = None
    refresh_reference: bool | None = None
    save_checkpoint: bool | None = None
    validate: bool | None = None

    def __post_init__(self) -> None:
        if self.vision_tower is not None:
            try:
                object.__setattr__(self, "vision_tower", VisionTower(self.vision_tower))
            except ValueError:
                raise OverrideError(
                    "vision_tower", f"must be 'trainable' or 'frozen', got {self.vision_tower!r}"
                ) from None
        _positive("lr", self.lr)
        _positive("lr_warmup_ratio", self.lr_warmup_ratio, allow_zero=True, below_one=True)
        _positive("kl_coef", self.kl_coef, allow_zero=True)
        _positive("clip_ratio_low", self.clip_ratio_low, below_one=True)
        _positive("clip_ratio_high", self.clip_ratio_high)
        _positive("max_grad_norm", self.max_grad_norm)
        _positive("rollout_temperature", self.rollout_temperature)
        if self.rollout_n is not None and (
            isinstance(self.rollout_n, bool) or not isinstance(self.rollout_n, int) or self.rollout_n < 1
        ):
            raise OverrideError("rollout_n", f"must be an integer >= 1, got {self.rollout_n!r}")
        if self.reward is not None:
            if not isinstance(self.reward, Mapping) or not all(isinstance(key, str) for key in self.reward):
                raise OverrideError("reward", f"must be a mapping of reward keyword arguments, got {self.reward!r}")
            object.__setattr__(self, "reward", dict(self.reward))
        for name in START_ACTIONS + END_ACTIONS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise OverrideError(name, f"must be true or false, got {value!r}")

    @classmethod
    def from_config(cls, config: OverridesConfig) -> Overrides:
        return cls(**{name: getattr(config, name) for name in FIELDS})

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

    def replace(self, **changes: Any) -> Overrides:
        return dataclasses.replace(self, **changes)


NO_OVERRIDES = Overrides()

__all__ = [
    "END_ACTIONS",
    "FIELDS",
    "KNOBS",
    "NO_OVERRIDES",
    "START_ACTIONS",
    "OverrideError",
    "Overrides",
    "OverridesConfig",
    "VisionTower",
]
