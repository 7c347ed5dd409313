"""The run's progress in the layout every backend writes (``curriculum.run_layout``): ``curriculum_steps.jsonl``
(one line per step, exact on resume) and ``curriculum_summary.json`` (one entry per stage), under
``trainer.save_checkpoint_path``.

EasyR1's own file logger (``experiment_log.jsonl``) is not rewound on resume; these files are. The summary is
rebuilt from the steps file after every step, so a resumed run's summary equals the uninterrupted run's; stage-end
validations come from the trainer's validation logs (and, after a resume, from the previous summary).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum import Plan
from vlm_capcurriculum.curriculum.run_layout import StepsLog, stage_summary, step_record

from .hf_export import has_weights
from .layout import StageLayout

#: EasyR1's step metric -> the steps file's field (reward/accuracy are step_record's own). Only metrics EasyR1 has
#: computed before it saves the step's checkpoint (the line is written then), so every line reads the same
#: whatever ``trainer.save_freq`` is.
STEP_METRICS = {
    "format": "reward/format",
    "kl_loss": "actor/kl_loss",
    "lr": "actor/lr",
}



class RunProgress:
    """Appends a step's line when EasyR1 logs the step's metrics and rewrites the summary."""

    def __init__(self, layout: StageLayout, plan: Plan) -> None:
        self.layout = layout
        self.plan = plan
        self.steps = StepsLog(layout.root)
        self.validations: dict[int, dict[str, float]] = {}

    def resume_at(self, completed_steps: int) -> None:
        """Keep the lines of the steps the checkpoint holds and the validations of the stages it finished."""
        self.steps.resume_at(completed_steps)
        summary = Path(self.layout.summary_file)
        if summary.is_file():
            for entry in json.loads(summary.read_text(encoding="utf-8")).get("stages", []):
                stage = self.plan.stages[entry["stage"] - 1]
                if entry.get("validation") and stage.end_step <= completed_steps:
                    self.validations[stage.position] = entry["validation"]
        self.write_summary()

    def record_step(self, step: int, sample_ids: Sequence[str], metrics: Mapping[str, Any]) -> None:
        stage = self.plan.stage_at(step)
        extra = {field: metrics.get(key) for field, key in STEP_METRICS.items()}
        reward, accuracy = metrics.get("reward/overall"), metrics.get("reward/accuracy")
        self.steps.append(step_record(step, stage.name, stage.position, sample_ids, reward, accuracy, **extra))
        self.write_summary()

    def record_validation(self, step: int, metrics: Mapping[str, Any]) -> None:
        """A validation of the weights after ``step`` (stage ends and the run's end; step 0 is before training)."""
        if not 1 <= step <= self.plan.total_steps:
            return
        values = {key: float(value) for key, value in metrics.items() if key.startswith("val/")
                  and isinstance(value, (int, float))}  # fmt: skip
        if values:
            self.validations[self.plan.stage_at(step).position] = values
            self.write_summary()

    def stage_entries(self) -> list[dict[str, Any]]:
        records = self.steps.read()
        entries = []
        for stage in self.plan.stages:
            model = self.layout.stage_model(stage.position, stage.name)
            checkpoint = model if has_weights(model) else None
            entry = stage_summary(stage, records, checkpoint=checkpoint, validation=self.validations.get(stage.position))
            if entry is not None:
                entries.append(entry)
        return entries

    def write_summary(self) -> Path:
        """``curriculum_summary.json``, atomically (a kill mid-write leaves the previous file)."""
        records = self.steps.read()
        payload = {
            "backend": "easyr1",
            "mode": self.plan.mode.value,
            "total_steps": self.plan.total_steps,
            "completed_steps": records[-1]["step"] if records else 0,
            "plan_fingerprint": self.plan.fingerprint,
            "stages": self.stage_entries(),
        }
        path = Path(self.layout.summary_file)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path
