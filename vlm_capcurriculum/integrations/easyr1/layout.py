"""Where an EasyR1 curriculum run writes its files, under ``trainer.save_checkpoint_path`` (no EasyR1 import).

::

    <save_checkpoint_path>/
        global_step_N/ ...            EasyR1's own checkpoints (rotated by trainer.save_limit)
        curriculum_summary.json       one entry per stage (curriculum.run_layout, the layout every backend writes)
        curriculum_steps.jsonl        one line per step (curriculum.run_layout.StepsLog)
        curriculum/train.jsonl        the global index space as EasyR1 reads it (records.py)
        curriculum/val.jsonl          converted local validation files
        curriculum/plan.json          the plan (checked when a run resumes)
        curriculum/reference/NN-name  a refreshed KL reference, when the previous stage left no model
        stages/NN-name/               the model after stage NN (save_checkpoint): a Hugging Face model folder
        stages/NN-name/stage.json     which step and plan it came from (next to the model's files)
        chained/NN-name/{config.yaml,easyr1/}   chained execution: the stage's own EasyR1 run (the two curriculum
                                      files above then combine the stage runs' own, steps renumbered)

:class:`RunProgress` keeps the two progress files: EasyR1's own file logger (``experiment_log.jsonl``) is not rewound
on resume; these are. And the reward file EasyR1 loads by path, found from any directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vlm_capcurriculum
from vlm_capcurriculum.curriculum import Plan, run_layout
from vlm_capcurriculum.curriculum.run_layout import StepsLog, stage_summary, step_record

#: The reward EasyR1 runs by default: our batch reward (``REWARD_TYPE = "batch"``), the paper's 0.9/0.1 score.
DEFAULT_REWARD_FUNCTION = "reward_fns/capcurriculum.py:compute_score"
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class StageLayout:
    """Where a run writes its curriculum files, under ``trainer.save_checkpoint_path``."""

    root: str

    @property
    def curriculum_dir(self) -> str:
        return f"{self.root}/curriculum"

    @property
    def train_file(self) -> str:
        return f"{self.curriculum_dir}/train.jsonl"

    @property
    def val_file(self) -> str:
        return f"{self.curriculum_dir}/val.jsonl"

    @property
    def plan_file(self) -> str:
        return f"{self.curriculum_dir}/plan.json"

    @property
    def summary_file(self) -> str:
        return f"{self.root}/{run_layout.SUMMARY_FILE}"

    def stage_model(self, position: int, name: str) -> str:
        """``stages/<NN>-<name>``: the Hugging Face model folder after the stage (``from_pretrained`` and vLLM load
        it). EasyR1's checkpoint rotation only removes ``global_step_*`` folders, so it survives
        ``trainer.save_limit``."""
        return str(run_layout.stage_dir(self.root, position, name))

    def stage_info(self, position: int, name: str) -> str:
        """``stage.json`` in the stage's model folder: the step and plan the model came from."""
        return f"{self.stage_model(position, name)}/stage.json"

    def chained_run_dir(self, position: int, name: str) -> str:
        """``chained/<NN>-<name>``: a chained stage's own EasyR1 run (``config.yaml``, ``easyr1/`` checkpoints),
        kept out of the stage's model folder, which the merge replaces as a whole."""
        return f"{self.root}/chained/{position + 1:02d}-{name}"

    def reference_snapshot(self, position: int, name: str) -> str:
        """The KL reference of a stage that refreshed it, when the previous stage left no model directory."""
        return f"{self.curriculum_dir}/reference/{position + 1:02d}-{name}"


def resolve_function_path(spec: str, *, what: str) -> str:
    """``file.py:function`` (split at the last colon, as EasyR1's ``RewardConfig.post_init``) with the file made
    absolute: as given if it exists, else under the repository root, where an editable install keeps ``reward_fns/``."""
    path, colon, function = spec.rpartition(":") if ":" in spec else (spec, "", "")
    repo = Path(vlm_capcurriculum.__file__).resolve().parents[1]
    given = Path(path).expanduser()
    for candidate in (given, repo / given):
        if candidate.is_file():
            return f"{candidate.absolute()}{colon}{function}"
    raise FileNotFoundError(
        f"{what}: {path} is neither a file here ({Path.cwd()}) nor in the repository ({repo}); "
        "install vlm-capcurriculum from a clone (pip install -e .) or give an absolute path"
    )


def has_weights(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a model directory with weights (not just config and tokenizer)."""
    directory = Path(path)
    return (directory / "config.json").is_file() and any((directory / name).is_file() for name in WEIGHT_FILES)


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

    def write_summary(self) -> Path:
        """``curriculum_summary.json``, atomically (a kill mid-write leaves the previous file)."""
        records = self.steps.read()
        entries = []
        for stage in self.plan.stages:
            model = self.layout.stage_model(stage.position, stage.name)
            validation = self.validations.get(stage.position)
            entry = stage_summary(
                stage, records, checkpoint=model if has_weights(model) else None, validation=validation
            )
            if entry is not None:
                entries.append(entry)
        completed = records[-1]["step"] if records else 0
        return run_layout.write_summary(self.layout.summary_file, self.plan, entries, completed, backend="easyr1")
