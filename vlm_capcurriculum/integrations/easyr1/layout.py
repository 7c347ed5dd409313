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
"""

from __future__ import annotations

from dataclasses import dataclass

from vlm_capcurriculum.curriculum import run_layout


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
