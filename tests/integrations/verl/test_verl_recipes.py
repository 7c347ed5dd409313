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


from testkit import REPO

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum

SCRIPTS = sorted((REPO / "recipes" / "verl").glob("*.sh"))
SAMPLES = REPO / "data_recipes" / "samples"
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


def test_there_is_a_staged_and_a_merged_launcher_per_backbone() -> None:
    assert [script.name for script in SCRIPTS] == [
        "internvl3_5_8b_merged.sh",
        "internvl3_5_8b_staged.sh",
        "internvl3_8b_merged.sh",
        "internvl3_8b_staged.sh",
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
    assert Path(args[2]).resolve() == REPO / "recipes" / "config.yaml"
    for name, value in PAPER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    recipe = load_config(args[2], args[3:-1])
    model, mode = script.stem.rsplit("_", 1)
    assert recipe.backend.name == "verl" and recipe.curriculum.mode == mode
    assert recipe.model.name == {"qwen2_5vl_7b": "qwen2_5_vl_7b", "qwen3vl_8b": "qwen3_vl_8b"}.get(model, model)
    # the paper's settings, shared with every backend
    assert recipe.curriculum.batch_size == 512 and recipe.train.rollout_n == 5
    assert recipe.train.max_response_length == 2048 and recipe.train.reward.format_weight == 0.1
    assert [stage.epochs for stage in recipe.curriculum.stages] == [15, 15, 15]
    internvl = model.startswith("internvl")
    if internvl:  # reference internvl*/stage1/stage3 (4096) and merged_baseline.sh (2048, max_pixels 500000)
        assert recipe.model.path == {"internvl3_8b": "OpenGVLab/InternVL3-8B-hf"}.get(
            model, "OpenGVLab/InternVL3_5-8B-HF"
        )
        assert (recipe.train.max_prompt_length, recipe.train.max_pixels) == (
            (2048, 500000) if mode == "merged" else (4096, 4194304)
        )
    if mode == "merged":  # same total steps as staged; vision tower frozen (Qwen) or trainable (InternVL)
        small = load_config(args[2], [*args[3:-1], *SMALL_BATCH])
        staged = load_config(args[2], [*args[3:-1], *SMALL_BATCH, "curriculum=staged"])
        merged_plan = plan_curriculum(parse_curriculum(small.curriculum))[1]
        assert merged_plan.total_steps == plan_curriculum(parse_curriculum(staged.curriculum))[1].total_steps
        assert merged_plan.stages[0].state.vision_tower.value == ("trainable" if internvl else "frozen")


def test_staged_launcher_dry_run_end_to_end(tmp_path: Path) -> None:
    script = REPO / "recipes" / "verl" / "qwen2_5vl_7b_staged.sh"
    bin_dir = (
        None if shutil.which("vlmcc") else _shim(tmp_path / "bin", f'exec {sys.executable} -m vlm_capcurriculum "$@"')
    )
    env = {**os.environ, **PAPER_ENV, "PYTHONPATH": str(REPO)}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    out = tmp_path / "run"
    result = subprocess.run(
        ["bash", str(script), "--dry-run", *SMALL_BATCH, f"backend.output_dir={out}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "curriculum plan: staged, batch 8" in result.stdout and "1-180" in result.stdout
    assert "actor_rollout_ref.model.path=Qwen/Qwen2.5-VL-7B-Instruct" in result.stdout
    assert (out / "data" / "val_01_visual_reasoning.parquet").is_file()


#: Every InternVL launcher: the verl ones and the EasyR1-default ones (run with backend=verl).
INTERNVL_LAUNCHERS = [
    *(path for path in SCRIPTS if path.name.startswith("internvl")),
    *sorted((REPO / "recipes").glob("internvl*.sh")),
]


def _launcher_argv(script: Path, tmp_path: Path, *args: str) -> list[str]:
    """The ``vlmcc`` arguments the launcher builds (the verl ones call ``vlmcc``, the others ``$PYTHON -m ...``)."""
    out = tmp_path / f"{script.parent.name}_{script.stem}.json"
    capture = f'exec {sys.executable} -c \'import json, sys; json.dump(sys.argv[1:], open("{out}", "w"))\' "$@"'
    shim = _shim(tmp_path / "capture-bin", capture)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "PYTHON": str(shim / "vlmcc")}
    env.pop("VLMCC_RUN_NAME", None)
    subprocess.run(["bash", str(script), *args], check=True, env=env, cwd=tmp_path, timeout=60)
    argv = json.loads(out.read_text())
    return argv[2:] if argv[:2] == ["-m", "vlm_capcurriculum"] else argv


@pytest.mark.parametrize("script", INTERNVL_LAUNCHERS, ids=[f"{p.parent.name}/{p.stem}" for p in INTERNVL_LAUNCHERS])
def test_every_internvl_launcher_dry_runs_on_verl(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bash <launcher> --dry-run backend=verl``: the launcher's own command, run in this process (a subprocess per
    launcher would import verl each time), builds verl's real config, checks it and prints the plan. The dry run
    loads no model or processor, so no model hub is needed (``HF_HUB_OFFLINE`` makes a lookup fail, not hang)."""
    from vlm_capcurriculum.cli import main

    argv = _launcher_argv(script, tmp_path, "--dry-run", "backend=verl", *SMALL_BATCH)
    assert argv[:2] == ["train", "--config"] and "backend=verl" in argv and "--dry-run" in argv
    for name, value in {**PAPER_ENV, "HF_HUB_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    out = tmp_path / "run"
    assert main([*argv, f"backend.output_dir={out}"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    model = "internvl3_5_8b" if "3_5" in script.name else "internvl3_8b"
    hub_id = {"internvl3_8b": "OpenGVLab/InternVL3-8B-hf", "internvl3_5_8b": "OpenGVLab/InternVL3_5-8B-HF"}[model]
    command = (out / "verl.sh").read_text()
    assert f"actor_rollout_ref.model.path={hub_id}" in command
    merged = script.stem.endswith("merged")  # reference: stage 1 offloads the optimizer, merged_baseline.sh does not
    assert f"actor_rollout_ref.actor.fsdp_config.optimizer_offload={str(not merged).lower()}" in command
    if merged:
        assert "curriculum plan: merged, batch 8" in printed
        assert "data.max_prompt_length=2048" in command
        # merged_baseline.sh's max_pixels=500000 as InternVL's tile cap: 2 tiles of 448 px fit, so 1 crop (no thumbnail)
        assert "'+data.mm_processor_kwargs={max_patches:1}'" in command and "max_pixels" not in command
    else:
        assert "curriculum plan: staged, batch 8" in printed and "data.max_prompt_length=4096" in command
        assert "'+data.mm_processor_kwargs={}'" in command  # 4194304 px: the processor's own 12 tiles bind
        damped = "lr=3e-07 lr_warmup_ratio=0.05 kl_coef=0.05 clip_ratio_low=0.15 clip_ratio_high=0.15"
        assert (damped in printed) == (model == "internvl3_8b")


def test_the_internvl_gpu_check_composes(tmp_path: Path) -> None:
    """``recipes/gpu_checks/verl_internvl.sh --dry-run``: both runs of the GPU check (staged, merged) compose, pass
    verl's validation and write verl's command with the file logger rollout_check reads and InternVL's tile cap."""
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "OUTPUT_DIR": str(tmp_path)}
    env["HF_HUB_OFFLINE"] = "1"
    script = REPO / "recipes" / "gpu_checks" / "verl_internvl.sh"
    result = subprocess.run(
        ["bash", str(script), "--dry-run"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    commands = {mode: (tmp_path / mode / "verl.sh").read_text() for mode in ("staged", "merged")}
    assert all("'trainer.logger=[console,file]'" in command for command in commands.values())
    assert "actor_rollout_ref.model.path=OpenGVLab/InternVL3-8B-hf" in commands["staged"]
    assert "'+data.mm_processor_kwargs={max_patches:1}'" in commands["merged"]  # merged_baseline.sh's 500000 px
