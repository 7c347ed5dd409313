"""Where an EasyR1 curriculum run writes its files, under ``trainer.save_checkpoint_path`` (no EasyR1 import).

::

    <save_checkpoint_path>/
        global_step_N/ ...            EasyR1's own checkpoints (rotated by trainer.save_limit)
        curriculum/train.jsonl        the global index space as EasyR1 reads it (records.py)
        curriculum/val.jsonl          converted local validation files
        curriculum/plan.json          the plan (checked when a run resumes)
        curriculum/reference/NN-name  a refreshed KL reference, when the previous stage left no model
        stages/NN-name/hf             the model after stage NN (save_checkpoint), for from_pretrained and vLLM
        stages/NN-name/stage.json     which step and plan it came from
        stages/NN-name/{config.yaml,easyr1/}   chained execution: the stage's own EasyR1 run
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def stage_dir(self, position: int, name: str) -> str:
        """``stages/<NN>-<name>``: one per planned stage; EasyR1's checkpoint rotation only removes
        ``global_step_*`` folders, so these survive ``trainer.save_limit``."""
        return f"{self.root}/stages/{position + 1:02d}-{name}"

    def stage_model(self, position: int, name: str) -> str:
        """The Hugging Face model directory after the stage (``from_pretrained`` and vLLM load it)."""
        return f"{self.stage_dir(position, name)}/hf"

    def reference_snapshot(self, position: int, name: str) -> str:
        """The KL reference of a stage that refreshed it, when the previous stage left no model directory."""
        return f"{self.curriculum_dir}/reference/{position + 1:02d}-{name}"
