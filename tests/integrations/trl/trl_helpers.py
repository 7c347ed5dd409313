"""Helpers of the TRL backend tests: small curricula on the sample data and real trainers on tiny models.

(A module of its own, not conftest.py: several test folders have a conftest, and only one can be imported by name.)
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum import CurriculumData, Plan, parse_curriculum, plan_curriculum

REPO = Path(__file__).resolve().parents[3]  # not testkit: subprocess scripts import this module outside pytest

SAMPLES = REPO / "data_recipes" / "samples"
STAGE_FILES = {
    "perception": SAMPLES / "perception.jsonl",
    "text_reasoning": SAMPLES / "text_reasoning.jsonl",
    "visual_reasoning": SAMPLES / "visual_reasoning.jsonl",
}
WARM_START_STEPS = 40


def staged_spec(
    steps: tuple[int, ...] = (2, 2, 2),
    *,
    batch_size: int = 4,
    overrides: dict[str, Any] | None = None,
    stage_overrides: tuple[dict[str, Any], ...] | None = None,
    mode: str = "staged",
) -> Any:
    """The paper's three stages on the sample data, ``steps[i]`` steps each (all stage actions on by default)."""
    names = list(STAGE_FILES)[: len(steps)]
    stage_overrides = stage_overrides or tuple({} for _ in names)
    run_wide = {"reset_optimizer": True, "refresh_reference": True, "save_checkpoint": True, "validate": True}
    if mode == "merged":
        run_wide = {"save_checkpoint": True, "validate": True}
    stages = []
    for name, count, extra in zip(names, steps, stage_overrides, strict=True):
        stage: dict[str, Any] = {"name": name, "train_files": [str(STAGE_FILES[name])], "steps": count}
        if mode == "staged":
            stage["overrides"] = extra
        stages.append(stage)
    return parse_curriculum(
        {
            "mode": mode,
            "batch_size": batch_size,
            "seed": 1,
            "overrides": {**run_wide, **(overrides or {})},
            "stages": stages,
        }
    )


def small_plan(**kwargs: Any) -> tuple[CurriculumData, Plan]:
    return plan_curriculum(staged_spec(**kwargs))


def copy_base(base: Path, output_dir: Path) -> Path:
    """A run's own copy of a session base model (TRL rebuilds the reference from the policy's path)."""
    target = output_dir / "base_model"
    shutil.copytree(base, target)
    return target


def grpo_args(output_dir: Path, plan: Plan, **overrides: Any) -> Any:
    """A small CPU GRPOConfig whose layout matches ``plan`` (one optimizer step per curriculum step by default)."""
    from trl import GRPOConfig

    num_generations = overrides.pop("num_generations", 2)
    micro = overrides.pop("per_device_train_batch_size", plan.batch_size * num_generations)
    accumulation = overrides.pop("gradient_accumulation_steps", plan.batch_size * num_generations // micro)
    updates = plan.batch_size * num_generations // (micro * accumulation)
    values: dict[str, Any] = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "bf16": False,
        "report_to": "none",
        "num_generations": num_generations,
        "generation_batch_size": plan.batch_size * num_generations,
        "per_device_train_batch_size": micro,
        "gradient_accumulation_steps": accumulation,
        "max_completion_length": 12,
        "max_steps": plan.total_steps * updates,
        "learning_rate": 1e-3,
        "lr_scheduler_type": "constant",
        "weight_decay": 0.01,
        "beta": 0.02,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": plan.total_steps * updates,
        "seed": 0,
        "gradient_checkpointing": False,
        "disable_dropout": True,
        "shuffle_dataset": False,
        "disable_tqdm": True,
    }
    values.update(overrides)
    return GRPOConfig(**values)


def make_trainer(
    family: str,
    base: Path,
    output_dir: Path,
    data: CurriculumData,
    plan: Plan,
    *,
    val_rows: int = 4,
    trainer_kwargs: dict[str, Any] | None = None,
    **grpo_overrides: Any,
) -> Any:
    """A real CurriculumGRPOTrainer on a copy of ``base``."""
    from vlm_capcurriculum.integrations.trl.dataset import build_dataset
    from vlm_capcurriculum.integrations.trl.trainer import CurriculumGRPOTrainer
    from vlm_capcurriculum.models import load_tiny

    output_dir.mkdir(parents=True, exist_ok=True)
    model_dir = output_dir / "base_model"
    if not model_dir.exists():
        copy_base(base, output_dir)
    model, processor = load_tiny(model_dir)
    dataset = build_dataset(data.records, data.image_paths)
    val = dataset.select(range(len(dataset) - val_rows, len(dataset))) if val_rows else None
    kwargs = {"reward_kwargs": {"format_weight": 0.1}, "val_generation_kwargs": {"temperature": 0.6, "top_p": 0.95}}
    kwargs.update(trainer_kwargs or {})
    return CurriculumGRPOTrainer(
        model,
        plan=plan,
        args=grpo_args(output_dir, plan, **grpo_overrides),
        train_dataset=dataset,
        processing_class=processor,
        val_dataset=val,
        **kwargs,
    )
