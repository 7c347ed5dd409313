"""TRL's additions to the common step line and stage summary (:mod:`vlm_capcurriculum.curriculum.run_layout`):
exact ``[correct, completions]`` counts per capability (a stage's accuracy per capability stays exact over steps of
unequal mixes), the completion length and a stage's optimizer-step range. The steps file is the one step history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from vlm_capcurriculum.curriculum import PlannedStage
from vlm_capcurriculum.curriculum.run_layout import mean, stage_summary


def step_metrics(
    *,
    rewards: Sequence[float],
    accuracies: Sequence[float],
    formats: Sequence[float],
    lengths: Sequence[int],
    capabilities: Sequence[str],
) -> dict[str, Any]:
    """Means over one curriculum step's completions (``B x num_generations`` of them) and the capability counts."""
    counts: dict[str, list[float]] = {}
    for capability, accuracy in zip(capabilities, accuracies, strict=True):
        if accuracy is None or math.isnan(accuracy):
            continue
        entry = counts.setdefault(capability, [0.0, 0.0])
        entry[0] += accuracy
        entry[1] += 1
    return {
        "reward": mean(rewards) or 0.0,
        "accuracy": mean(accuracies) or 0.0,
        "format": mean(formats) or 0.0,
        "response_length": mean(float(n) for n in lengths) or 0.0,
        "accuracy_counts": counts,
    }


def stage_entry(
    stage: PlannedStage,
    records: Sequence[Mapping[str, Any]],
    updates_per_step: int,
    *,
    checkpoint: str | None,
    validation: Mapping[str, float] | None,
) -> dict[str, Any] | None:
    """One stage's summary entry from the steps file's lines, or None if none of its steps ran."""
    summary = stage_summary(stage, records, checkpoint=checkpoint, validation=validation)
    if summary is None:
        return None
    lines = [record for record in records if stage.contains(record["step"])]
    counts: dict[str, list[float]] = {}
    for record in lines:
        for capability, (correct, total) in record["accuracy_counts"].items():
            bucket = counts.setdefault(capability, [0.0, 0.0])
            bucket[0] += correct
            bucket[1] += total
    return summary | {
        "first_optimizer_step": (summary["first_step"] - 1) * updates_per_step + 1,
        "last_optimizer_step": summary["last_step"] * updates_per_step,
        "accuracy_by_capability": {cap: correct / total for cap, (correct, total) in counts.items() if total},
        "mean_completion_length": mean(record["response_length"] for record in lines),
    }
