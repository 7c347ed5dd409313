"""The verl launchers in ``recipes/verl/``: each composes the paper recipe with ``backend=verl``; one runs end to end
as a dry run on the sample data standing in for the paper's stage files (``recipes/data/paper.yaml`` reads them from
the reference code's environment variables)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

from verl_samples import ROOT

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum

SCRIPTS = sorted((ROOT / "recipes" / "verl").glob("*.sh"))
SAMPLES = ROOT / "data_recipes" / "samples"
#: The paper data's environment variables pointed at the sample data.
PAPER_ENV = {
    "VLMCC_STAGE1_TRAIN": str(SAMPLES / "perception.jsonl"),
    "VLMCC_STAGE1_IMAGE_DIR": str(SAMPLES),
    "VLMCC_STAGE2_TRAIN": str(SAMPLES / "text_reasoning.jsonl"),
    "VLMCC_STAGE3_TRAIN": str(SAMPLES / "visual_reasoning.jsonl"),
    "VLMCC_STAGE3_IMAGE_DIR": str(SAMPLES),
    "VLMCC_STAGE3_VAL": str(SAMPLES / "visual_reasoning.jsonl"),
}
#: The sample data is far smaller than the paper's 512-prompt batch.
SMALL_BATCH = ["curriculum.batch_size=8", "train.global_batch_size=8"]


def _shim(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "vlmcc"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return directory


def _script_args(script: Path, tmp_path: Path) -> list[str]:
    """What the launcher passes to ``vlmcc`` (captured by a stand-in ``vlmcc`` on PATH)."""
    out = tmp_path / f"{script.stem}.json"
    capture = f'exec {sys.executable} -c \'import json, sys; json.dump(sys.argv[1:], open("{out}", "w"))\' "$@"'
    shim = _shim(tmp_path / "capture-bin", capture)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(["bash", str(script), "extra=1"], check=True, env=env, cwd=tmp_path, timeout=60)
    return json.loads(out.read_text())


def test_there_is_a_staged_and_a_merged_launcher_per_qwen_backbone() -> None:
    assert [script.name for script in SCRIPTS] == [
        "qwen2_5vl_7b_merged.sh",
        "qwen2_5vl_7b_staged.sh",
        "qwen3vl_8b_merged.sh",
        "qwen3vl_8b_staged.sh",
    ]


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.stem for script in SCRIPTS])
def test_launcher_composes_the_paper_recipe_on_verl(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _script_args(script, tmp_path)
    assert args[:2] == ["train", "--config"] and args[-1] == "extra=1"  # the user's arguments come last
    assert Path(args[2]).resolve() == ROOT / "recipes" / "config.yaml"
    for name, value in PAPER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    recipe = load_config(args[2], args[3:-1])
    model, mode = script.stem.rsplit("_", 1)
    assert recipe.backend.name == "verl" and recipe.curriculum.mode == mode
    assert recipe.model.name == {"qwen2_5vl_7b": "qwen2_5_vl_7b", "qwen3vl_8b": "qwen3_vl_8b"}[model]
    # the paper's settings, shared with every backend
    assert recipe.curriculum.batch_size == 512 and recipe.train.rollout_n == 5
    assert recipe.train.max_response_length == 2048 and recipe.train.reward.format_weight == 0.1
    assert [stage.epochs for stage in recipe.curriculum.stages] == [15, 15, 15]
    if mode == "merged":  # same total steps as staged, vision tower frozen (Qwen merged_baseline.sh)
        small = load_config(args[2], [*args[3:-1], *SMALL_BATCH])
        staged = load_config(args[2], [*args[3:-1], *SMALL_BATCH, "curriculum=staged"])
        merged_plan = plan_curriculum(parse_curriculum(small.curriculum))[1]
        assert merged_plan.total_steps == plan_curriculum(parse_curriculum(staged.curriculum))[1].total_steps
        assert merged_plan.stages[0].state.vision_tower.value == "frozen"


def test_staged_launcher_dry_run_end_to_end(tmp_path: Path) -> None:
    script = ROOT / "recipes" / "verl" / "qwen2_5vl_7b_staged.sh"
    bin_dir = (
        None if shutil.which("vlmcc") else _shim(tmp_path / "bin", f'exec {sys.executable} -m vlm_capcurriculum "$@"')
    )
    env = {**os.environ, **PAPER_ENV, "PYTHONPATH": str(ROOT)}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    out = tmp_path / "run"
    result = subprocess.run(
        ["bash", str(script), "--dry-run", *SMALL_BATCH, f"backend.output_dir={out}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "curriculum plan: staged, batch 8" in result.stdout and "1-180" in result.stdout
    assert "actor_rollout_ref.model.path=Qwen/Qwen2.5-VL-7B-Instruct" in result.stdout
    assert (out / "data" / "val_01_visual_reasoning.parquet").is_file()
