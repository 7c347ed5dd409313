"""One output layout for every backend, so evaluation, analysis and reports read any run the same way.

``<output_dir>/``
    ``curriculum_summary.json``   one entry per stage (steps, reward at start/end, accuracy, checkpoint, validation)
    ``curriculum_steps.jsonl``    one line per curriculum step (:class:`StepsLog`)
    ``stages/NN-<stage>/``        the model after stage ``NN`` as a Hugging Face folder (``from_pretrained``)

The frameworks' own file loggers truncate their logs on resume; the steps file is ours and is kept exact instead:
a resumed run drops the lines after the step it resumed from and writes them again, so its file equals the
uninterrupted run's.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vlm_capcurriculum.curriculum.plan import Plan, PlannedStage

SUMMARY_FILE = "curriculum_summary.json"
STEPS_FILE = "curriculum_steps.jsonl"
STAGES_DIR = "stages"


def stage_dir(output_dir: str | os.PathLike[str], position: int, name: str) -> Path:
    """``<output_dir>/stages/NN-<name>`` for the stage at 0-based ``position`` (NN counts from 01)."""
    return Path(output_dir) / STAGES_DIR / f"{position + 1:02d}-{name}"


def _finite(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def step_record(
    step: int,
    stage: str,
    stage_position: int,
    sample_ids: Sequence[str],
    reward: float | None,
    accuracy: float | None,
    **metrics: float | None,
) -> dict[str, Any]:
    """One line of the steps file: the step (1-based, global), its stage, the ids of the step's batch (each prompt
    once, in batch order) and the means over the step's responses. NaN/inf become ``null`` (JSON has no NaN)."""
    record: dict[str, Any] = {
        "step": int(step),
        "stage": stage,
        "stage_index": int(stage_position) + 1,
        "sample_ids": [str(sample_id) for sample_id in sample_ids],
        "reward": _finite(reward),
        "accuracy": _finite(accuracy),
    }
    record.update({key: _finite(value) for key, value in sorted(metrics.items())})
    return record


def window(steps: int) -> int:
    """Steps averaged for a stage's start and end reward: the first/last tenth, at least one (one step is too noisy
    to compare stages)."""
    return max(1, math.ceil(steps / 10))


def mean(values: Iterable[float | None]) -> float | None:
    """The mean of the finite values, None when there are none."""
    kept = [float(value) for value in values if value is not None and math.isfinite(value)]
    return sum(kept) / len(kept) if kept else None


def stage_summary(
    stage: PlannedStage,
    records: Sequence[Mapping[str, Any]],
    *,
    checkpoint: str | None,
    validation: Mapping[str, float] | None = None,
) -> dict[str, Any] | None:
    """One stage's entry of ``curriculum_summary.json`` from the steps file's lines (None if none of its steps ran):
    the common fields every backend writes, so reports read any run the same way."""
    lines = [record for record in records if stage.contains(record["step"])]
    if not lines:
        return None
    span = window(stage.steps)
    return {
        "stage": stage.position + 1,
        "name": stage.name,
        "capability": stage.capability,
        "steps": len(lines),
        "planned_steps": stage.steps,
        "complete": lines[-1]["step"] == stage.end_step and len(lines) == stage.steps,
        "first_step": lines[0]["step"],
        "last_step": lines[-1]["step"],
        "reward_window": span,
        "reward_start": mean(record["reward"] for record in lines[:span]),
        "reward_end": mean(record["reward"] for record in lines[-span:]),
        "accuracy": mean(record["accuracy"] for record in lines),
        "format": mean(record.get("format") for record in lines),
        "checkpoint": checkpoint,
        "validation": dict(validation) if validation is not None else None,
    }


class StepsLog:
    """``curriculum_steps.jsonl``: appended once per step. A backend calls :meth:`resume_at` with the completed
    steps of the checkpoint it starts from (0 for a fresh run) before its first :meth:`append`."""

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.path = Path(output_dir) / STEPS_FILE
        self._last_step: int | None = None

    def read(self) -> list[dict[str, Any]]:
        """Every complete line; a torn last line (a kill mid-write) is ignored, it is rewritten on resume."""
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.endswith("\n")]

    def resume_at(self, completed_steps: int) -> None:
        """Keep the lines of steps ``<= completed_steps`` (the checkpoint resumed from), drop the rest atomically."""
        kept = [record for record in self.read() if record["step"] <= completed_steps]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in kept), encoding="utf-8")
        os.replace(temporary, self.path)
        self._last_step = kept[-1]["step"] if kept else 0

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one step's line; steps must follow each other (a gap or repeat means a resume went wrong)."""
        if self._last_step is None:
            raise RuntimeError(f"{self.path}: call resume_at(completed_steps) before the first append")
        if record["step"] != self._last_step + 1:
            raise ValueError(f"{self.path}: step {record['step']} logged after step {self._last_step}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self._last_step = int(record["step"])


def write_summary(
    path: str | os.PathLike[str], plan: Plan, stages: Sequence[Mapping[str, Any]], completed_steps: int, **extra: Any
) -> Path:
    """Write ``curriculum_summary.json`` (``extra`` keys first, then the common ones) atomically: a kill mid-write
    leaves the previous file."""
    from vlm_capcurriculum.checkpoints import write_json_atomic

    payload = {
        **extra,
        "mode": plan.mode.value,
        "total_steps": plan.total_steps,
        "completed_steps": completed_steps,
        "plan_fingerprint": plan.fingerprint,
        "stages": list(stages),
    }
    write_json_atomic(path, payload)
    return Path(path)
