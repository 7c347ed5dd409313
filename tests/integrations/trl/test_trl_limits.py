"""What TRL lacks and the backend supplies: EasyR1's pixel bounds, its overlong-prompt filter, validation before
training; and what it cannot do (dual clip) refused at plan time."""

from __future__ import annotations

import pytest
from PIL import Image
from trl_helpers import REPO

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.trl.config import build_settings
from vlm_capcurriculum.integrations.trl.dataset import bound_pixels, build_dataset, prompt_lengths, with_pixel_bounds
from vlm_capcurriculum.integrations.trl.launch import _drop_overlong_prompts
from vlm_capcurriculum.models import build_tiny_processor

CONFIG = str(REPO / "recipes" / "config.yaml")


pytestmark = pytest.mark.usefixtures("recipe_run")  # from the repository root, OUTPUT_DIR in tmp


def compose(*overrides: str):
    config = load_config(CONFIG, ["backend=trl", "model=tiny_qwen3_vl", "backend.device=cpu", *overrides])
    data, plan = plan_curriculum(parse_curriculum(config.curriculum))
    return config, data, plan


def test_pixel_bounds_scale_like_easyr1() -> None:
    big = bound_pixels(Image.new("RGB", (4000, 1000)), 256 * 256, 1000 * 1000)
    assert big.width * big.height <= 1000 * 1000 and abs(big.width / big.height - 4) < 0.01
    small = bound_pixels(Image.new("RGBA", (20, 10)), 256 * 256, 1000 * 1000)
    assert small.mode == "RGB" and small.width * small.height >= 0.98 * 256 * 256 and small.width == 2 * small.height
    same = bound_pixels(Image.new("RGB", (300, 300)), 256 * 256, 1000 * 1000)
    assert same.size == (300, 300)


def test_recipe_bounds_reach_every_image_the_trainer_reads() -> None:
    # the 8B recipes' bounds (reference config.yaml data.*_pixels); the tiny recipes carry their processor's own
    assert (compose()[0].train.min_pixels, compose()[0].train.max_pixels) == (4096, 16384)
    config, data, plan = compose("train.min_pixels=262144", "train.max_pixels=4194304")
    settings = build_settings(config, plan)
    assert (settings.min_pixels, settings.max_pixels) == (262144, 4194304)
    dataset = with_pixel_bounds(build_dataset(data.records, data.image_paths), settings.min_pixels, None)
    [image] = dataset[0]["images"]  # a 2-D sample picture, far below 512 x 512
    assert image.width * image.height >= 0.98 * 262144
    assert all(im.width * im.height >= 0.98 * 262144 for row in dataset[:3]["images"] for im in row)
    assert dataset["index"][:3] == [0, 1, 2]  # other columns untouched


def test_overlong_prompts_are_dropped_counted_and_the_run_replanned(capsys) -> None:
    config, data, plan = compose()
    processor = build_tiny_processor("qwen3_vl")
    dataset = build_dataset(data.records, data.image_paths)
    lengths = prompt_lengths(dataset, processor)
    assert len(lengths) == len(data.records) and min(lengths) > 0
    limit = sorted(lengths)[len(lengths) // 2]  # about half the prompts are longer
    settings = build_settings(config, plan)
    settings = type(settings)(**{**settings.__dict__, "max_prompt_length": limit})
    new_data, new_plan, new_settings = _drop_overlong_prompts(config, data, plan, settings, dataset, processor)
    dropped = sum(length > limit for length in lengths)
    assert 0 < dropped < len(lengths) and len(new_data.records) == len(data.records) - dropped
    notes = sum(stage.report.notes.get("dropped_overlong_prompt", 0) for stage in new_data.stages)
    assert notes == dropped
    assert new_plan.total_steps < plan.total_steps and new_settings.grpo.max_steps == new_plan.total_steps
    assert f"dropped {dropped} training prompts longer than train.max_prompt_length={limit}" in capsys.readouterr().out


def test_dual_clip_is_refused_at_plan_time(capsys) -> None:
    assert compose()[0].train.clip_ratio_dual is None  # recipes/backend/trl.yaml: TRL has none
    argv = ["train", "--config", CONFIG, "backend=trl", "model=tiny_qwen3_vl", "train.clip_ratio_dual=3.0", "--dry-run"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "train.clip_ratio_dual=3.0: TRL's GRPO loss has no dual clip" in err and len(err.strip().splitlines()) == 1
    assert build_settings(*[compose()[i] for i in (0, 2)]).val_before_train  # EasyR1 trainer.val_before_train
