"""The per-step line and the per-stage summary behind curriculum_summary.json."""

from __future__ import annotations

import pytest
from trl_helpers import small_plan

from vlm_capcurriculum.curriculum.run_layout import step_record, window
from vlm_capcurriculum.integrations.trl.history import stage_entry, step_metrics


def line(step: int, stage, reward: float) -> dict:
    metrics = step_metrics(
        rewards=[reward, reward],
        accuracies=[1.0, 0.0],
        formats=[1.0, 1.0],
        lengths=[10, 20],
        capabilities=[stage.capability, stage.capability],
    )
    counts = metrics.pop("accuracy_counts")
    record = step_record(
        step, stage.name, stage.position, [], metrics.pop("reward"), metrics.pop("accuracy"), **metrics
    )
    return record | {"accuracy_counts": counts}


def test_window_is_a_tenth_of_the_stage_and_at_least_one_step() -> None:
    assert [window(n) for n in (1, 9, 10, 11, 64, 465)] == [1, 1, 1, 2, 7, 47]


def test_step_metrics_count_accuracy_per_capability_and_skip_missing_scores() -> None:
    metrics = step_metrics(
        rewards=[1.0, 0.0, 0.5],
        accuracies=[1.0, 0.0, float("nan")],
        formats=[1.0, 0.0, 1.0],
        lengths=[4, 8, 6],
        capabilities=["perception", "perception", "text_reasoning"],
    )
    assert metrics["accuracy_counts"] == {"perception": [1.0, 2]}
    assert (metrics["reward"], metrics["accuracy"], metrics["response_length"]) == (0.5, 0.5, 6.0)


def test_stage_entry_per_stage() -> None:
    _, plan = small_plan(steps=(2, 3, 2))
    rewards = [0.1, 0.2, 0.3, 0.4, 0.5]
    records = [line(step, plan.stage_at(step), rewards[step - 1]) for step in range(1, 6)]
    checkpoint, validation = "/out/stages/01-perception", {"val/accuracy": 0.25}
    first = stage_entry(plan.stages[0], records, 2, checkpoint=checkpoint, validation=validation)
    assert (first["first_step"], first["last_step"], first["complete"]) == (1, 2, True)
    assert (first["first_optimizer_step"], first["last_optimizer_step"]) == (1, 4)
    assert first["reward_start"] == pytest.approx(0.1) and first["reward_end"] == pytest.approx(0.2)
    assert first["accuracy_by_capability"] == {"perception": 0.5}
    assert first["mean_completion_length"] == 15.0
    assert first["checkpoint"] == checkpoint and first["validation"] == validation
    second = stage_entry(plan.stages[1], records, 2, checkpoint=None, validation=None)
    assert (second["steps"], second["planned_steps"], second["complete"]) == (3, 3, True)
    assert stage_entry(plan.stages[2], records, 2, checkpoint=None, validation=None) is None  # stage 3 never ran
