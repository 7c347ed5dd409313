"""The sample recipe prepared for verl by the real launcher, for tests (a module of its own: test modules import it
by name, which a ``conftest`` cannot safely be in a suite with several conftest files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit import REPO

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
        REPO / "recipes" / "config.yaml",
        [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={output_dir}", *overrides],
    )
    return prepare_run(recipe)


def _png(path: Path, colour: str, size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((5, 5, 25, 20), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_records(image_root: Path, capability: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` records of one capability in our schema (perception: MCQ on an image; text_reasoning: math
    without image; visual_reasoning: a number about an image)."""
    colours = ["red", "blue", "green", "yellow"]
    records = []
    for i in range(start, start + count):
        if capability == "text_reasoning":
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": f"Compute {i} + 30.",
                    "images": [],
                    "answer": str(i + 30),
                    "answer_type": "math",
                    "pass_rate": 0.5,
                    "source": "synthetic",
                }
            )
            continue
        image = f"{capability}/{i}.png"
        _png(image_root / image, colours[i % 4])
        if capability == "perception":
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": "<image>What colour is the square?\nA. red\nB. blue\nC. green\nD. yellow",
                    "images": [image],
                    "answer": "ABCD"[i % 4],
                    "answer_type": "choice",
                    "choices": {"A": "red", "B": "blue", "C": "green", "D": "yellow"},
                    "pass_rate": (i % 5) / 4,
                    "source": "docci-synthetic",
                }
            )
        else:
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": "How many squares are in the image <image>?",
                    "images": [image],
                    "answer": "1",
                    "answer_type": "number",
                    "source": "synthetic",
                }
            )
    return records
