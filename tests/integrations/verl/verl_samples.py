"""The sample recipe prepared for verl by the real launcher, for tests (a module of its own: test modules import it
by name, which a ``conftest`` cannot safely be in a suite with several conftest files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

#: Recipe overrides for CPU tests of the sample recipe: one GPU's layout, no dataloader workers, no validation before
#: training, one epoch per stage (4 steps each with the samples' batch of 8: 12 steps over three stages), verl's own
#: checkpoints every 3 steps.
SAMPLE_RECIPE_OVERRIDES = [
    "data=samples",
    "backend=verl",
    "curriculum.stages.0.epochs=1",
    "curriculum.stages.1.epochs=1",
    "curriculum.stages.2.epochs=1",
    "backend.overrides.trainer.n_gpus_per_node=1",
    "backend.overrides.trainer.val_before_train=false",
    "backend.overrides.trainer.save_freq=3",
    "+backend.overrides.data.dataloader_num_workers=0",
]


def prepare_sample_run(output_dir: Path, *overrides: str) -> Any:
    """``vlmcc train --config recipes/config.yaml data=samples backend=verl`` up to (not including) starting verl:
    the launcher's parquet files, curriculum config and composed, validated verl config, in ``output_dir``. Run from
    the repository root (the recipe's data paths are relative to it)."""
    from vlm_capcurriculum.config import load_config
    from vlm_capcurriculum.integrations.verl.launch import prepare_run

    recipe = load_config(
        ROOT / "recipes" / "config.yaml",
        [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={output_dir}", *overrides],
    )
    return prepare_run(recipe)
