"""Every shipped recipe composes and plans against the sample data, with the paper's values."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import REPO

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import Mode, Order, SpecError, parse_curriculum, plan_curriculum

CURRICULA = sorted(path.stem for path in (REPO / "recipes" / "curriculum").glob("*.yaml"))
MODELS = sorted(path.stem for path in (REPO / "recipes" / "model").glob("*.yaml"))
PAPER_MODELS = [model for model in MODELS if not model.startswith("tiny_")]
PAPER_EPOCHS = {"perception": 15, "text_reasoning": 15, "visual_reasoning": 15}  # paper Sec. 4.1
REFERENCE_SCRIPTS_EPOCHS = {**PAPER_EPOCHS, "perception": 16}  # reference stage1_perception.sh
EXPECTED_STAGES = {
    "staged": ["perception", "text_reasoning", "visual_reasoning"],
    "reference_scripts": ["perception", "text_reasoning", "visual_reasoning"],
    "capability_x_difficulty": ["perception", "text_reasoning", "visual_reasoning"],
    "order_213": ["text_reasoning", "perception", "visual_reasoning"],
    "order_321": ["visual_reasoning", "text_reasoning", "perception"],
    "stage3_only": ["visual_reasoning"],
    "stage1_stage3": ["perception", "visual_reasoning"],
    "stage2_stage3": ["text_reasoning", "visual_reasoning"],
}


def compose(*overrides: str):
    return load_config(REPO / "recipes" / "config.yaml", list(overrides))


def test_the_papers_curricula_and_backbones_ship() -> None:
    """Each ablation of the paper, the merged baseline and the four backbones have a recipe (more may be added)."""
    assert set(EXPECTED_STAGES) | {"merged", "difficulty", "stitched_replay"} <= set(CURRICULA)
    assert {"qwen2_5_vl_7b", "qwen3_vl_8b", "internvl3_8b", "internvl3_5_8b"} <= set(PAPER_MODELS)


@pytest.mark.parametrize("curriculum", CURRICULA)
def test_every_curriculum_plans_on_the_samples(repo_root: Path, curriculum: str) -> None:
    config = compose(f"curriculum={curriculum}")
    spec = parse_curriculum(config.curriculum)
    data, plan = plan_curriculum(spec)
    assert len(data.records) == plan.dataset_size > 0
    assert plan.total_steps > 0 and plan.batch_size == 8  # the samples data group scales the batch down
    for stage in spec.stages:
        if stage.epochs is not None:
            expected = REFERENCE_SCRIPTS_EPOCHS if curriculum == "reference_scripts" else PAPER_EPOCHS
            assert stage.epochs == expected[stage.name], stage.name
    if curriculum in EXPECTED_STAGES:
        assert spec.mode is Mode.staged
        assert [stage.name for stage in plan.stages] == EXPECTED_STAGES[curriculum]
        assert all(stage.state.refresh_reference and stage.state.reset_optimizer for stage in plan.stages)
        paper_vision = {"perception": "trainable", "text_reasoning": "frozen", "visual_reasoning": "trainable"}
        assert {stage.name: stage.state.vision_tower.value for stage in plan.stages} == {
            stage.name: paper_vision[stage.name] for stage in plan.stages
        }
        assert {s.order for s in plan.stages} == {Order.easy_to_hard if "difficulty" in curriculum else Order.shuffle}


def test_paper_batch_size_in_the_curricula(repo_root: Path) -> None:
    for curriculum in CURRICULA:
        config = compose(f"curriculum={curriculum}", "~data")  # without the samples' batch of 8
        assert config.curriculum.batch_size == 512, curriculum


def test_merged_trains_the_staged_total_with_the_backbones_vision_tower(repo_root: Path) -> None:
    staged = plan_curriculum(parse_curriculum(compose().curriculum))[1]
    for model, tower in (("qwen3_vl_8b", "frozen"), ("qwen2_5_vl_7b", "frozen"), ("internvl3_8b", "trainable")):
        merged = plan_curriculum(parse_curriculum(compose("curriculum=merged", f"model={model}").curriculum))[1]
        assert merged.total_steps == staged.total_steps == 15 * 4 + 15 * 4 + 15 * 4
        assert [s.name for s in merged.stages] == ["merged"]
        assert merged.stages[0].state.vision_tower.value == tower, model
    difficulty = plan_curriculum(parse_curriculum(compose("curriculum=difficulty").curriculum))[1]
    assert difficulty.total_steps == staged.total_steps and difficulty.stages[0].order is Order.easy_to_hard


def test_stitched_replay_replays_all_stages_every_pass(repo_root: Path) -> None:
    spec = parse_curriculum(compose("curriculum=stitched_replay").curriculum)
    plan = plan_curriculum(spec)[1]
    assert spec.epochs == 15 and len(plan.stages) == 45
    assert [s.name for s in plan.stages[:4]] == ["perception", "text_reasoning", "visual_reasoning", "perception"]


@pytest.mark.parametrize("model", PAPER_MODELS)
def test_every_model_composes_with_the_paper_knobs(repo_root: Path, model: str) -> None:
    config = compose(f"model={model}")
    assert config.model.name == model
    assert config.train.max_prompt_length == (4096 if model.startswith("internvl") else 2048)
    assert config.model.offload_optimizer == model.startswith("internvl")  # reference stage1_perception.sh
    assert config.train.rollout_n == 5 and config.train.max_response_length == 2048
    spec = parse_curriculum(config.curriculum)
    text = spec.stage_state(spec.stages[1])
    if model == "internvl3_8b":  # reference internvl3_8b/stage2_text_reasoning.sh
        assert (text.lr, text.kl_coef, text.clip_ratio_low, text.clip_ratio_high, text.max_grad_norm) == (
            3e-7,
            5e-2,
            0.15,
            0.15,
            0.5,
        )
        assert text.lr_warmup_ratio == 0.05  # worker.actor.optim.lr_warmup_ratio=0.05, of the stage's own steps
        assert spec.unused_capability_overrides() == []  # the damping names the stage it is for
    else:
        assert text.lr is None and text.kl_coef is None and text.lr_warmup_ratio is None


@pytest.mark.parametrize("model", sorted(set(MODELS) - set(PAPER_MODELS)))
def test_tiny_models_mirror_their_backbone(repo_root: Path, model: str) -> None:
    config = compose(f"model={model}")
    family = model.removeprefix("tiny_")
    assert config.model.path == f"tiny://{family}" and config.model.tiny_warm_start_steps > 0
    backbone = {"qwen2_5_vl": "qwen2_5_vl_7b", "qwen3_vl": "qwen3_vl_8b", "internvl3": "internvl3_8b"}
    real = compose(f"model={backbone.get(family, 'internvl3_5_8b')}")
    assert (config.model.family, config.model.merged_vision_tower) == (
        real.model.family,
        real.model.merged_vision_tower,
    )


def test_paper_data_names_the_missing_environment_variable(repo_root: Path, monkeypatch) -> None:
    for name in (
        "VLMCC_STAGE1_TRAIN",
        "VLMCC_STAGE1_IMAGE_DIR",
        "VLMCC_STAGE2_TRAIN",
        "VLMCC_STAGE3_TRAIN",
        "VLMCC_STAGE3_IMAGE_DIR",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SpecError, match="environment variable VLMCC_STAGE1_TRAIN is not set"):
        parse_curriculum(compose("data=paper").curriculum)
    samples = repo_root / "data_recipes" / "samples"
    monkeypatch.setenv("VLMCC_STAGE1_TRAIN", str(samples / "perception.jsonl"))
    monkeypatch.setenv("VLMCC_STAGE1_IMAGE_DIR", str(samples))
    monkeypatch.setenv("VLMCC_STAGE2_TRAIN", str(samples / "text_reasoning.jsonl"))
    with pytest.raises(SpecError, match="environment variable VLMCC_STAGE3_TRAIN is not set"):
        parse_curriculum(compose("data=paper").curriculum)
    monkeypatch.setenv("VLMCC_STAGE3_TRAIN", str(samples / "visual_reasoning.jsonl"))
    monkeypatch.setenv("VLMCC_STAGE3_IMAGE_DIR", str(samples))
    spec = parse_curriculum(compose("data=paper", "curriculum.batch_size=8").curriculum)
    assert plan_curriculum(spec)[1].total_steps == 180


def test_pipeline_data_trains_on_the_splits_train_part_and_validates_on_its_val_part(
    repo_root: Path, tmp_path: Path, monkeypatch
) -> None:
    from vlm_capcurriculum.data.split import split_file

    samples = repo_root / "data_recipes" / "samples"
    parts = split_file(samples / "perception.jsonl", tmp_path).counts
    monkeypatch.setenv("VLMCC_PERCEPTION_SPLIT_DIR", str(tmp_path))
    monkeypatch.setenv("VLMCC_STAGE1_IMAGE_DIR", str(samples))
    monkeypatch.setenv("VLMCC_STAGE2_TRAIN", str(samples / "text_reasoning.jsonl"))
    monkeypatch.setenv("VLMCC_STAGE3_TRAIN", str(samples / "visual_reasoning.jsonl"))
    monkeypatch.setenv("VLMCC_STAGE3_IMAGE_DIR", str(samples))
    config = compose("data=pipeline", "curriculum.batch_size=1")
    plan = plan_curriculum(parse_curriculum(config.curriculum))[1]
    assert plan.stages[0].steps == 15 * parts["train"]  # the perception stage reads the train part only
    assert list(config.data.val_files) == [str(tmp_path / "val_stage1_perception.jsonl")]
    assert config.data.text_reasoning.train_files == [str(samples / "text_reasoning.jsonl")]  # as data=paper
