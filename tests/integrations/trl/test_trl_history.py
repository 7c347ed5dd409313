"""The per-step record and the per-stage summary behind curriculum_summary.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trl_helpers import small_plan

from vlm_capcurriculum.curriculum.run_layout import window
from vlm_capcurriculum.integrations.trl.history import CurriculumHistory, StepStats, write_summary


def stats(step: int, stage: int, reward: float, capability: str = "perception") -> StepStats:
    return StepStats.from_samples(
        step,
        stage,
        rewards=[reward, reward],
        accuracies=[1.0, 0.0],
        formats=[1.0, 1.0],
        lengths=[10, 20],
        capabilities=[capability, capability],
    )


def test_window_is_a_tenth_of_the_stage_and_at_least_one_step() -> None:
    assert [window(n) for n in (1, 9, 10, 11, 64, 465)] == [1, 1, 1, 2, 7, 47]


def test_summary_per_stage(tmp_path: Path) -> None:
    _, plan = small_plan(steps=(2, 3, 2))
    history = CurriculumHistory()
    for step, reward in zip(range(1, 6), [0.1, 0.2, 0.3, 0.4, 0.5], strict=True):
        stage = plan.stage_at(step)
        history.add_step(stats(step, stage.position, reward, stage.capability))
    history.checkpoints[0] = "/out/stages/01-perception"
    history.validations[0] = {"val/accuracy": 0.25}
    entries = history.summary(plan, updates_per_step=2)
    assert [entry["name"] for entry in entries] == ["perception", "text_reasoning"]  # stage 3 never ran
    first, second = entries
    assert (first["first_step"], first["last_step"], first["complete"]) == (1, 2, True)
    assert (first["first_optimizer_step"], first["last_optimizer_step"]) == (1, 4)
    assert first["reward_start"] == pytest.approx(0.1) and first["reward_end"] == pytest.approx(0.2)
    assert first["accuracy_by_capability"] == {"perception": 0.5}
    assert first["mean_completion_length"] == 15.0
    assert first["checkpoint"] == "/out/stages/01-perception" and first["validation"] == {"val/accuracy": 0.25}
    assert (second["steps"], second["planned_steps"], second["complete"]) == (3, 3, True)

    path = write_summary(tmp_path / "curriculum_summary.json", plan, history, 2)
    written = json.loads(path.read_text())
    assert written["completed_steps"] == 5 and len(written["stages"]) == 2
    assert CurriculumHistory.from_json(json.loads(json.dumps(history.to_json()))).summary(plan, 2) == entries


def test_steps_are_recorded_in_order_and_truncated_on_resume() -> None:
    history = CurriculumHistory()
    history.add_step(stats(1, 0, 0.0))
    with pytest.raises(ValueError, match="after step 1"):
        history.add_step(stats(3, 0, 0.0))
    history.add_step(stats(2, 0, 0.0))
    history.truncate(1)
    assert [entry.step for entry in history.steps] == [1]
