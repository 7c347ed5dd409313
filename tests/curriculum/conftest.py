from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from vlm_capcurriculum.curriculum import Operation, PlannedStage


class RecordingEngine:
    """A real implementation of our engine protocol that records every call and tracks the effective state.

    ``state`` maps each knob to its current value, ``None`` meaning the engine's base value, as a framework
    engine would hold it; ``events`` lists the start/end actions with the step they happened at.
    """

    def __init__(self, supported: frozenset[Operation] | None = None) -> None:
        self.supported_operations = frozenset(Operation) if supported is None else supported
        self.calls: list[tuple[str, Any]] = []
        self.state: dict[str, Any] = {}
        self.events: list[tuple[str, Any]] = []

    def _set(self, name: str, value: Any) -> None:
        self.calls.append((name, value))
        self.state[name] = value

    def set_vision_tower_trainable(self, trainable: bool | None) -> None:
        self._set("vision_tower_trainable", trainable)

    def set_lr(self, lr: float | None) -> None:
        self._set("lr", lr)

    def set_lr_warmup(self, ratio: float | None, stage: Any) -> None:
        self._set("lr_warmup", (ratio, stage.start_step, stage.steps))

    def set_kl_coef(self, kl_coef: float | None) -> None:
        self._set("kl_coef", kl_coef)

    def set_clip_ratio(self, low: float | None, high: float | None) -> None:
        self._set("clip_ratio", (low, high))

    def set_max_grad_norm(self, max_grad_norm: float | None) -> None:
        self._set("max_grad_norm", max_grad_norm)

    def set_rollout_temperature(self, temperature: float | None) -> None:
        self._set("rollout_temperature", temperature)

    def set_rollout_n(self, n: int | None) -> None:
        self._set("rollout_n", n)

    def set_reward_kwargs(self, kwargs: Mapping[str, Any]) -> None:
        self._set("reward", dict(kwargs))

    def reset_optimizer(self) -> None:
        self.calls.append(("reset_optimizer", None))
        self.events.append(("reset_optimizer", None))

    def refresh_reference(self) -> None:
        self.calls.append(("refresh_reference", None))
        self.events.append(("refresh_reference", None))

    def save_stage_checkpoint(self, stage: PlannedStage, step: int) -> None:
        self.calls.append(("save_stage_checkpoint", (stage.position, step)))
        self.events.append(("save_stage_checkpoint", (stage.position, step)))

    def validate(self, stage: PlannedStage, step: int) -> None:
        self.calls.append(("validate", (stage.position, step)))
        self.events.append(("validate", (stage.position, step)))


@pytest.fixture(scope="session")
def recording_engine() -> type[RecordingEngine]:
    return RecordingEngine


def three_stage_config(**changes: Any) -> dict[str, Any]:
    """A paper-shaped staged curriculum over files that need not exist (specs do not touch files)."""
    config: dict[str, Any] = {
        "mode": "staged",
        "batch_size": 4,
        "seed": 1,
        "overrides": {"reset_optimizer": True, "refresh_reference": True, "save_checkpoint": True},
        "stages": [
            {"name": "perception", "train_files": ["p.jsonl"], "epochs": 2, "overrides": {"vision_tower": "trainable"}},
            {
                "name": "text_reasoning",
                "train_files": ["t.jsonl"],
                "epochs": 1,
                "overrides": {"vision_tower": "frozen"},
            },
            {
                "name": "visual_reasoning",
                "train_files": ["v.jsonl"],
                "steps": 3,
                "overrides": {"vision_tower": "trainable", "validate": True},
            },
        ],
    }
    config.update(changes)
    return config


@pytest.fixture(scope="session")
def staged_config() -> Any:
    return three_stage_config
