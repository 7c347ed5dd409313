"""The common output layout (:mod:`vlm_capcurriculum.curriculum.run_layout`) written by a verl run into
``curriculum.output_dir`` (the launcher sets it; without it nothing is written): the steps file, each stage's
Hugging Face export as ``stages/NN-<stage>/`` and the summary, derived from the steps file (so a resumed run's
summary is exact too). After a resume from ``global_step_K`` the steps file keeps the first ``K`` steps.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum import CurriculumData, Plan, PlannedStage
from vlm_capcurriculum.curriculum.run_layout import (
    SUMMARY_FILE,
    StepsLog,
    stage_dir,
    stage_summary,
    step_record,
    write_summary,
)


def _metric(metrics: Mapping[str, Any], name: str) -> float | None:
    value = metrics.get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class RunLayout:
    """Writes the layout of one verl run (in the trainer's process)."""

    def __init__(self, output_dir: str | os.PathLike[str], plan: Plan, data: CurriculumData) -> None:
        self.output_dir = Path(output_dir)
        self.plan = plan
        self.ids = [record.id for record in data.records]
        self.steps = StepsLog(self.output_dir)

    def log_step(self, step: int, metrics: Mapping[str, Any]) -> None:
        stage = self.plan.stage_at(step)
        self.steps.append(
            step_record(
                step,
                stage.name,
                stage.position,
                [self.ids[index] for index in self.plan.batch(step)],
                _metric(metrics, "reward/overall"),  # the trainer's reward_extra_metrics: means over the step
                _metric(metrics, "reward/accuracy"),
                format=_metric(metrics, "reward/format"),
            )
        )
        self.write_summary()

    def export_stage(self, stage: PlannedStage, hf_dir: str | os.PathLike[str]) -> None:
        """Copy a stage-end HF export to ``stages/NN-<stage>`` (replaced whole: a rerun of the stage rewrites it)."""
        target = stage_dir(self.output_dir, stage.position, stage.name)
        temporary = target.with_name(target.name + ".tmp")
        shutil.rmtree(temporary, ignore_errors=True)
        shutil.copytree(hf_dir, temporary)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(temporary, target)

    def write_summary(self) -> None:
        records = self.steps.read()
        stages = []
        for stage in self.plan.stages:
            folder = stage_dir(self.output_dir, stage.position, stage.name)
            entry = stage_summary(stage, records, checkpoint=str(folder) if folder.is_dir() else None)
            if entry is not None:
                stages.append(entry)
        completed = records[-1]["step"] if records else 0
        write_summary(self.output_dir / SUMMARY_FILE, self.plan, stages, completed)
