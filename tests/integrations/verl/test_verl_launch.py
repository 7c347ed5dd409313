"""``vlmcc train --config recipes/config.yaml backend=verl``: the launcher builds the real verl config, writes the
parquet files and the curriculum config, validates with verl's own checks and prints the plan, without Ray or a GPU;
the command it prints is verl's own entry point and composes the same config in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("verl")

from omegaconf import OmegaConf
from testkit import REPO
from verl_samples import SAMPLE_RECIPE_OVERRIDES

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.verl import launch as launch_module
from vlm_capcurriculum.launch import LaunchError

SAMPLE_STAGES = ("perception", "text_reasoning", "visual_reasoning")


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vlm_capcurriculum", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_dry_run_from_the_command_line(tmp_path: Path) -> None:
    """The CI check: the default recipe (staged Qwen3-VL-8B on the samples, paper epochs) with backend=verl."""
    out = tmp_path / "run"
    result = _cli("train", "--config", "recipes/config.yaml", "backend=verl", f"backend.output_dir={out}", "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    stdout = result.stdout
    assert "curriculum plan: staged, batch 8, seed 1" in stdout and "1-180" in stdout  # 60 + 60 + 60 steps
    assert "[validate_config] All configuration checks passed successfully!" in stdout
    assert "ray init" not in stdout.lower()  # nothing started
    for name in (
        "train_01_perception",
        "train_02_text_reasoning",
        "train_03_visual_reasoning",
        "val_01_visual_reasoning",
    ):
        assert pq.ParquetFile(out / "data" / f"{name}.parquet").metadata.num_rows == 36
    assert (out / "config" / "curriculum" / "run.yaml").is_file()
    assert f"--config-dir {out / 'config'} curriculum=run" in stdout
    assert not (out / "checkpoints").exists()


def test_printed_command_is_verls_own_entry_point(tmp_path: Path, sample_run: Any) -> None:
    """verl's ``main_ppo`` (its ``@hydra.main``) composes the launcher's command to the config the launcher built:
    the route for users who launch verl directly. ``--cfg job`` prints the composed config and exits."""
    run = sample_run(layout=True)
    result = subprocess.run(
        [sys.executable, *run.command()[1:], "--cfg", "job", "--resolve"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # anywhere: every path in the config is absolute
        env={**os.environ, "PYTHONPATH": str(REPO)},  # where the project is not installed
    )
    assert result.returncode == 0, result.stderr[-3000:]
    composed = yaml.safe_load(result.stdout)
    assert composed == OmegaConf.to_container(run.config, resolve=True)
    assert composed["trainer"]["v1"]["trainer_mode"] == "capcurriculum"
    assert composed["data"]["train_files"] == [str(path) for path in run.train_files]
    assert composed["curriculum"]["stages"][0]["train_files"] == [str(REPO / "data_recipes/samples/perception.jsonl")]


def test_recipe_keys_reach_verls_config(sample_run: Any) -> None:
    run = sample_run("train.lr=3.0e-7", "train.kl_coef=0.05", "model=qwen2_5_vl_7b")
    config = run.config
    actor = config.actor_rollout_ref.actor
    assert actor.optim.lr == 3.0e-7 and actor.kl_loss_coef == 0.05 and actor.optim.clip_grad == 1.0
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.3) and actor.kl_loss_type == "low_var_kl"
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert config.actor_rollout_ref.rollout.n == 5 and config.data.max_response_length == 2048
    assert config.actor_rollout_ref.rollout.val_kwargs.temperature == 0.6
    assert config.data.train_batch_size == run.plan.batch_size == 8
    assert config.trainer.experiment_name == run.output_dir.name
    assert config.trainer.default_local_dir == str(run.output_dir / "checkpoints")
    # the curriculum block is the recipe's, with absolute paths, plus where the run layout goes
    assert config.curriculum.mode == "staged" and config.curriculum.overrides.refresh_reference is True
    assert set(config.curriculum) >= {"output_dir", "stages"}


def test_default_output_dir_names_the_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default is relative to the current directory; data paths made absolute
    samples = REPO / "data_recipes" / "samples"
    data = [f"data.{name}.train_files=[{samples / name}.jsonl]" for name in SAMPLE_STAGES]
    overrides = [*SAMPLE_RECIPE_OVERRIDES, *data, f"data.val_files=[{samples / 'visual_reasoning.jsonl'}]"]
    run = launch_module.prepare_run(load_config(REPO / "recipes" / "config.yaml", overrides))
    assert run.output_dir == tmp_path / "outputs" / "verl" / f"qwen3_vl_8b_staged_{launch_module.plan_id(run.plan)}"
    merged = load_config(REPO / "recipes" / "config.yaml", [*overrides, "curriculum=merged"])
    assert launch_module.plan_id(plan_curriculum(parse_curriculum(merged.curriculum))[1]) != launch_module.plan_id(
        run.plan
    )


def test_launch_runs_verl_only_without_dry_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    recipe = load_config(
        REPO / "recipes" / "config.yaml",
        [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={tmp_path}", "backend.drop_overlong_prompts=false"],
    )  # the model id is not loadable offline: no prompt measuring here (test_verl_overlong.py)
    started: list[Any] = []

    def record(config: Any, *, device: str = "cuda") -> None:
        started.append(config)

    with patch.object(launch_module, "run_verl", record):
        assert launch_module.launch(recipe, dry_run=True) == 0
        assert started == []
        assert launch_module.launch(recipe, dry_run=False) == 0
    assert len(started) == 1 and started[0].trainer.v1.trainer_mode == "capcurriculum"


def test_launch_says_when_the_run_is_complete_or_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    recipe = load_config(
        REPO / "recipes" / "config.yaml",
        [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={tmp_path}", "backend.drop_overlong_prompts=false"],
    )

    def interrupted(config: Any, *, device: str = "cuda") -> None:
        raise KeyboardInterrupt

    entry = {"stage": 1, "name": "perception", "steps": 4, "planned_steps": 4, "first_step": 1, "last_step": 4,
             "reward_start": 0.08125, "reward_end": 0.0625, "accuracy": 0.0, "validation": None}  # fmt: skip

    def finished(config: Any, *, device: str = "cuda") -> None:  # as the run's layout writes it
        (tmp_path / "curriculum_summary.json").write_text(json.dumps({"stages": [entry]}))

    with patch.object(launch_module, "run_verl", finished):
        assert launch_module.launch(recipe, dry_run=False) == 0
    out = capsys.readouterr().out
    assert f"verl: run complete; per-stage summary in {tmp_path / 'curriculum_summary.json'}" in out
    assert "stage 1 perception: steps 1-4 (4/4), reward 0.081 -> 0.062, accuracy 0.000, val accuracy -" in out
    with patch.object(launch_module, "run_verl", interrupted):
        assert launch_module.launch(recipe, dry_run=False) == 130
    assert "verl: interrupted; run the same command again to start over" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # verl cannot change the rollout temperature mid-run: verl's reason, before anything starts
        (["+curriculum.stages.1.overrides.rollout_temperature=0.7"], r"stage 'text_reasoning'.*rollout_temperature"),
        # a typo in a native verl key is Hydra's error
        (["+backend.overrides.actor_rollout_ref.actor.optim.lrr=1"], r"Could not override 'actor_rollout_ref.actor"),
        # verl's own validation
        (["train.rollout_temperature=0"], r"verl's config validation: validation gen temperature should be greater"),
        # no local validation data (the paper recipe's default is a Hugging Face dataset id)
        (["data.val_files=[hiyouga/geometry3k@test]"], r"data.val_files\[0\]: 'hiyouga/geometry3k@test'"),
        # the curriculum itself
        (["curriculum.batch_size=64"], r"stage 'perception'.*36 samples.*batch"),
        # the reward function must load as verl's reward workers load it
        (["+backend.overrides.reward.custom_reward_function.name=no_such_function"], r"no_such_function does not load"),
    ],
)
def test_problems_are_one_line_launch_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: list[str], message: str
) -> None:
    monkeypatch.chdir(REPO)
    recipe = load_config(
        REPO / "recipes" / "config.yaml", [*SAMPLE_RECIPE_OVERRIDES, f"backend.output_dir={tmp_path}", *overrides]
    )
    with pytest.raises(LaunchError, match=message):
        launch_module.prepare_run(recipe)


def test_curriculum_option_keeps_literal_dollar_braces(tmp_path: Path) -> None:
    path = launch_module.write_curriculum_option(
        tmp_path, {"stages": [{"name": "a", "train_files": ["/d/${x}.jsonl"]}]}, [Path("/t.parquet")], [], "note"
    )
    loaded = OmegaConf.load(path)
    assert OmegaConf.to_container(loaded, resolve=True)["curriculum"]["stages"][0]["train_files"] == ["/d/${x}.jsonl"]
