"""What each curriculum step and stage did: the record behind ``curriculum_summary.json``.

The trainer appends one :class:`StepStats` per curriculum step (from the rewards it computed for that step's
generation batch), and the engine records stage checkpoints and validation results. The history is saved in every
TRL checkpoint (``curriculum_state.json``), so a resumed run's summary is the uninterrupted run's.

Per stage, :meth:`CurriculumHistory.summary` reports the mean reward over the stage's first and last
:func:`~vlm_capcurriculum.curriculum.run_layout.window` steps ("reward at start / end": one step is too noisy to compare stages, the first and last tenth
are not), the mean accuracy overall and per capability, the mean completion length (tokens), the stage checkpoint
and the validation metrics.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum import Plan, PlannedStage
from vlm_capcurriculum.curriculum.run_layout import mean, stage_summary
from vlm_capcurriculum.curriculum.run_layout import write_summary as write_run_summary


@dataclass
class StepStats:
    """Means over one curriculum step's completions (``B x num_generations`` of them)."""

    step: int
    stage: int  # PlannedStage.position
    reward: float
    accuracy: float
    format: float
    completion_length: float
    # capability -> [correct, completions]: exact per-capability means over any range of steps
    accuracy_counts: dict[str, list[float]] = field(default_factory=dict)

    @classmethod
    def from_samples(
        cls,
        step: int,
        stage: int,
        *,
        rewards: Sequence[float],
        accuracies: Sequence[float],
        formats: Sequence[float],
        lengths: Sequence[int],
        capabilities: Sequence[str],
    ) -> StepStats:
        counts: dict[str, list[float]] = {}
        for capability, accuracy in zip(capabilities, accuracies, strict=True):
            if accuracy is None or math.isnan(accuracy):
                continue
            entry = counts.setdefault(capability, [0.0, 0.0])
            entry[0] += accuracy
            entry[1] += 1
        return cls(
            step=step,
            stage=stage,
            reward=mean(rewards) or 0.0,
            accuracy=mean(accuracies) or 0.0,
            format=mean(formats) or 0.0,
            completion_length=mean(float(n) for n in lengths) or 0.0,
            accuracy_counts=counts,
        )


@dataclass
class CurriculumHistory:
    """Per-step statistics, stage checkpoints and validation results of one run."""

    steps: list[StepStats] = field(default_factory=list)
    checkpoints: dict[int, str] = field(default_factory=dict)  # stage position -> stage checkpoint dir
    validations: dict[int, dict[str, float]] = field(default_factory=dict)  # stage position -> metrics

    def add_step(self, stats: StepStats) -> None:
        if self.steps and stats.step != self.steps[-1].step + 1:
            raise ValueError(f"step {stats.step} recorded after step {self.steps[-1].step}")
        self.steps.append(stats)

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [asdict(stats) for stats in self.steps],
            "checkpoints": {str(key): value for key, value in self.checkpoints.items()},
            "validations": {str(key): value for key, value in self.validations.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CurriculumHistory:
        return cls(
            steps=[StepStats(**stats) for stats in data.get("steps", [])],
            checkpoints={int(key): value for key, value in data.get("checkpoints", {}).items()},
            validations={int(key): dict(value) for key, value in data.get("validations", {}).items()},
        )

    def truncate(self, completed_steps: int) -> None:
        """Forget steps after ``completed_steps`` (a resume from an earlier checkpoint)."""
        self.steps = [stats for stats in self.steps if stats.step <= completed_steps]

    def stage_summary(self, stage: PlannedStage, updates_per_step: int) -> dict[str, Any] | None:
        """One stage's entry of the summary (the common fields, plus TRL's optimizer-step range, accuracy per
        capability and mean completion length), or None if none of its steps ran."""
        stats = [entry for entry in self.steps if stage.contains(entry.step)]
        summary = stage_summary(
            stage,
            [asdict(entry) for entry in stats],
            checkpoint=self.checkpoints.get(stage.position),
            validation=self.validations.get(stage.position),
        )
        if summary is None:
            return None
        counts: dict[str, list[float]] = {}
        for entry in stats:
            for capability, (correct, total) in entry.accuracy_counts.items():
                bucket = counts.setdefault(capability, [0.0, 0.0])
                bucket[0] += correct
                bucket[1] += total
        return summary | {
            "first_optimizer_step": (summary["first_step"] - 1) * updates_per_step + 1,
            "last_optimizer_step": summary["last_step"] * updates_per_step,
            "accuracy_by_capability": {cap: correct / total for cap, (correct, total) in counts.items() if total},
            "mean_completion_length": mean(entry.completion_length for entry in stats),
        }

    def summary(self, plan: Plan, updates_per_step: int) -> list[dict[str, Any]]:
        """One entry per planned stage that trained at least one step, in plan order."""
        entries = (self.stage_summary(stage, updates_per_step) for stage in plan.stages)
        return [entry for entry in entries if entry is not None]


def write_summary(path: str | os.PathLike[str], plan: Plan, history: CurriculumHistory, updates_per_step: int) -> Path:
    """``curriculum_summary.json`` of the run so far (:func:`~vlm_capcurriculum.curriculum.run_layout.write_summary`)."""
    completed = history.steps[-1].step if history.steps else 0
    stages = history.summary(plan, updates_per_step)
    return write_run_summary(path, plan, stages, completed, updates_per_step=updates_per_step)
