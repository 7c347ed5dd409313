"""``vlmcc train ... backend=trl``: the recipe becomes a real GRPOConfig, recipe errors are one line, ``--dry-run``
loads no model, and the CPU quick start script runs the whole staged curriculum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trl_helpers import REPO, SAMPLES

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.trl.config import build_settings

CONFIG = str(REPO / "recipes" / "config.yaml")


pytestmark = pytest.mark.usefixtures("recipe_run")  # from the repository root, OUTPUT_DIR in tmp


def settings(*overrides: str):
    config = load_config(CONFIG, ["backend=trl", "model=tiny_qwen3_vl", *overrides])
    _, plan = plan_curriculum(parse_curriculum(config.curriculum))
    return build_settings(config, plan), plan


def test_recipe_maps_onto_grpo_config() -> None:
    result, plan = settings("backend.device=cpu")
    grpo = result.grpo
    assert plan.total_steps == 180 and plan.batch_size == 8
    assert (grpo.num_generations, grpo.generation_batch_size) == (5, 40)  # paper group size 5
    assert (grpo.per_device_train_batch_size, grpo.gradient_accumulation_steps, grpo.steps_per_generation) == (
        4,
        10,
        10,
    )
    assert result.updates_per_step == 1 and grpo.max_steps == 180
    assert grpo.reward_weights == pytest.approx([0.9, 0.1])  # overall = 0.9 accuracy + 0.1 format
    assert (grpo.beta, grpo.epsilon, grpo.epsilon_high) == (0.01, 0.2, 0.3)
    assert (grpo.learning_rate, grpo.lr_scheduler_type, grpo.max_completion_length) == (1e-4, "constant", 32)
    assert grpo.use_cpu and not grpo.bf16 and result.dtype == "float32"
    assert result.output_dir == Path(os.environ["OUTPUT_DIR"]) and result.model_path == "tiny://qwen3_vl"
    assert result.val_generation_kwargs == {"temperature": 0.6, "top_p": 0.95}


def test_global_batch_size_gives_several_updates_per_step() -> None:
    result, _ = settings("backend.device=cpu", "train.global_batch_size=4", "backend.micro_batch_size=null")
    assert (result.grpo.per_device_train_batch_size, result.grpo.gradient_accumulation_steps) == (20, 1)
    assert result.updates_per_step == 2 and result.grpo.max_steps == 360


def test_no_kl_loss_means_beta_zero() -> None:
    assert settings("backend.device=cpu", "train.use_kl_loss=false")[0].grpo.beta == 0.0


def test_dry_run_prints_the_plan_and_loads_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--config", CONFIG, "backend=trl", "model=tiny_qwen3_vl", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "curriculum plan: staged" in out and "visual_reasoning" in out
    assert "one curriculum step = one generation batch of 40 completions (8 prompts x 5)" in out
    assert not (tmp_path / "out").exists()  # no tiny model built, no checkpoint written


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+backend.grpo.max_steps=5", "backend.grpo.max_steps: derived"),
        ("+backend.grpo.no_such_field=1", "backend.grpo.no_such_field: not a GRPOConfig field"),
        ("backend.micro_batch_size=3", "backend.micro_batch_size 3 must divide"),
        ("train.global_batch_size=3", "train.global_batch_size 3 must divide"),
        ("+curriculum.overrides.rollout_n=8", "sets rollout_n=8"),
        ("train.kl_penalty=kl", "train.kl_penalty"),
        ("data.val_files=[]", "data.val_files is empty"),
        ("+train.reward.format_wieght=0.2", "train.reward: unknown reward setting 'format_wieght'"),
        ("backend.device=gpu", "backend.device"),
        ("backend.model_path=tiny://qwen9", "unknown tiny family 'qwen9'"),
    ],
)
def test_recipe_errors_are_one_line(override: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", CONFIG, "backend=trl", "model=tiny_qwen3_vl", override, "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert message in err and "backend trl" in err and len(err.strip().splitlines()) == 1, err


def test_8b_script_runs_on_trl_with_the_real_model_id(tmp_path: Path) -> None:
    """The headline script on TRL (dry run: the plan and the mapping, no download), data=paper pointed at the samples."""
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "VLMCC_STAGE1_TRAIN": str(SAMPLES / "perception.jsonl"),
        "VLMCC_STAGE1_IMAGE_DIR": str(SAMPLES),
        "VLMCC_STAGE2_TRAIN": str(SAMPLES / "text_reasoning.jsonl"),
        "VLMCC_STAGE3_TRAIN": str(SAMPLES / "visual_reasoning.jsonl"),
        "VLMCC_STAGE3_IMAGE_DIR": str(SAMPLES),
        "VLMCC_STAGE3_VAL": str(SAMPLES / "visual_reasoning.jsonl"),
    }
    done = subprocess.run(
        ["bash", str(REPO / "recipes" / "qwen3vl_8b_staged.sh"), "backend=trl", "curriculum.batch_size=8",
         "train.global_batch_size=8", "--dry-run"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "model Qwen/Qwen3-VL-8B-Instruct" in done.stdout and "curriculum plan: staged" in done.stdout


@pytest.mark.slow
def test_quickstart_script_trains_all_stages(tmp_path: Path) -> None:
    """The README's first command, with one epoch per stage instead of 15/15/15 (the full run takes minutes)."""
    output = tmp_path / "quickstart"
    env = {**os.environ, "OUTPUT_DIR": str(output), "PYTHON": sys.executable}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    epochs = [f"curriculum.stages.{i}.epochs=1" for i in range(3)]
    done = subprocess.run(
        ["bash", str(REPO / "recipes" / "quickstart_cpu.sh"), *epochs],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert out.index("curriculum plan: staged") < out.index("curriculum stages")  # plan first, stage table last
    summary = json.loads((output / "curriculum_summary.json").read_text())
    assert [stage["name"] for stage in summary["stages"]] == ["perception", "text_reasoning", "visual_reasoning"]
    assert all(stage["complete"] and stage["validation"]["val/samples"] == 36 for stage in summary["stages"])
    for stage in summary["stages"]:
        assert (Path(stage["checkpoint"]) / "model.safetensors").is_file()
        assert (Path(stage["checkpoint"]) / "processor_config.json").is_file()
    # Logs for people: a line per step and a banner per stage, not TRL's metrics dict; the steps file of run_layout.
    assert "[2/3 text_reasoning] step  5/12  reward " in out and "== stage 3/3 visual_reasoning" in out
    assert "{'loss'" not in out and "train_runtime" not in out
    steps = [json.loads(line) for line in (output / "curriculum_steps.jsonl").read_text().splitlines()]
    assert [record["step"] for record in steps] == list(range(1, 13)) and len(steps[0]["sample_ids"]) == 8
    assert list(output.glob("**/events.out.tfevents.*"))  # TensorBoard, on by default
    card = (output / "stages" / "02-text_reasoning" / "README.md").read_text()
    assert "# text_reasoning: stage 2 of 3" in card and "**Base model:** `tiny://qwen3_vl`" in card
    assert "text_reasoning.jsonl" in card and "0.9 * accuracy + 0.1 * format" in card
    assert "fine-tuned version of" not in (output / "README.md").read_text()  # ours, not TRL's card
    again = subprocess.run(
        ["bash", str(REPO / "recipes" / "quickstart_cpu.sh"), *epochs],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0 and "this run is complete: all 12 steps are done" in again.stdout, again.stderr


def test_prompts_use_the_shared_format_prompt() -> None:
    """The recipe's format prompt is the shipped think_boxed.jinja (what EasyR1 is given), rendered as EasyR1 does."""
    from vlm_capcurriculum.prompts import THINK_BOXED, prompt_blocks, render_prompt

    assert settings("backend.device=cpu")[0].format_prompt == THINK_BOXED.read_text(encoding="utf-8")
    text = render_prompt("  <image>How many circles?  ")
    assert text.startswith("<image>How many circles? You FIRST think") and text.endswith("\\boxed{final answer here}")
    assert prompt_blocks("Compare <image> and <image>.") == [
        {"type": "text", "text": "Compare "},
        {"type": "image", "text": None},
        {"type": "text", "text": " and "},
        {"type": "image", "text": None},
        {"type": "text", "text": "."},
    ]
