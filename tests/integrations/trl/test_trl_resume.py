"""Kill-and-resume across a stage boundary reproduces the uninterrupted run exactly.

Child processes (same interpreter settings, so float reductions are identical): one uninterrupted run; per case a run
that SIGKILLs itself right after writing checkpoint-N, and the same command again, which resumes from the newest
complete checkpoint and crosses the next stage boundary (reset optimizer, refresh reference, vision tower on/off).
N=2 kills at the end of stage 1 (the resumed run starts with stage 2's start actions); N=3 kills inside stage 2 (the
resumed run reloads stage 2's reference from disk and then crosses into stage 3). Qwen2.5-VL is a family whose
checkpoints the stock Trainer resume loads under the wrong key names (test_trl_weights.py covers InternVL too).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from testkit import REPO

from vlm_capcurriculum.integrations.trl.trainer import last_complete_checkpoint

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("resume_child.py")


def run_child(family: str, base: Path, output: Path, kill_after: int = 0) -> subprocess.CompletedProcess:
    command = [sys.executable, str(CHILD), family, str(base), str(output)]
    if kill_after:
        command += ["--kill-after", str(kill_after)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"  # as the tests' own process (conftest): fastest for tiny models
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"{len(different)} of {len(a)} tensors differ, e.g. {different[:3]}"


def summary_without_paths(output: Path) -> list[dict]:
    stages = json.loads((output / "curriculum_summary.json").read_text())["stages"]
    for stage in stages:
        stage["checkpoint"] = Path(stage["checkpoint"]).name
    return stages


def steps_without_timing(output: Path) -> list[dict]:
    """curriculum_steps.jsonl without the wall-clock seconds (the only field that differs between equal runs)."""
    lines = (output / "curriculum_steps.jsonl").read_text().splitlines()
    return [{key: value for key, value in json.loads(line).items() if key != "seconds"} for line in lines]


FAMILY = "qwen2_5_vl"


@pytest.fixture(scope="module")
def straight(tiny_base, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run's output directory."""
    output = tmp_path_factory.mktemp("straight") / "run"
    done = run_child(FAMILY, tiny_base(FAMILY), output)
    assert done.returncode == 0, done.stderr[-3000:]
    return output


@pytest.mark.parametrize("kill_after", [2, 3])
def test_killed_run_resumes_to_the_uninterrupted_weights(
    kill_after: int, straight: Path, tiny_base, tmp_path: Path
) -> None:
    family, base = FAMILY, tiny_base(FAMILY)
    killed = tmp_path / "killed"
    first = run_child(family, base, killed, kill_after=kill_after)
    assert first.returncode == -signal.SIGKILL, first.stderr[-3000:]
    assert (killed / f"checkpoint-{kill_after}" / "curriculum_state.json").is_file()
    assert not (killed / f"checkpoint-{kill_after + 1}").exists()
    second = run_child(family, base, killed)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"resume_from=checkpoint-{kill_after}" in second.stdout

    # Final policy: the last TRL checkpoint and the last stage checkpoint, tensor for tensor.
    assert_identical(tensors(straight / "checkpoint-6"), tensors(killed / "checkpoint-6"))
    stage3 = "stages/03-visual_reasoning"
    assert_identical(tensors(straight / stage3), tensors(killed / stage3))
    # Optimizer moments and the scheduler (warm-up restart point) too.
    opt_a = torch.load(straight / "checkpoint-6" / "optimizer.pt", weights_only=True)["state"]
    opt_b = torch.load(killed / "checkpoint-6" / "optimizer.pt", weights_only=True)["state"]
    assert opt_a.keys() == opt_b.keys()
    for key in opt_a:
        for name in opt_a[key]:
            assert torch.equal(opt_a[key][name], opt_b[key][name]), (key, name)
    # The per-stage record, including what happened before the kill.
    assert summary_without_paths(straight) == summary_without_paths(killed)
    # The steps file (run_layout.StepsLog): the resumed run's equals the uninterrupted one's, line for line.
    assert steps_without_timing(killed) == steps_without_timing(straight)
    assert [record["step"] for record in steps_without_timing(straight)] == [1, 2, 3, 4, 5, 6]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda c: truncate(c / "model.safetensors"), "model.safetensors has"),
        (lambda c: truncate(c / "optimizer.pt"), "optimizer.pt has"),
        (lambda c: (c / "trainer_state.json").write_text('{"global_step": 6,'), "trainer_state.json has"),
    ],
    ids=["truncated-weights", "truncated-optimizer", "broken-json"],  # an unfinished save: tests/test_checkpoints.py
)
def test_a_damaged_newest_checkpoint_resumes_from_the_previous_one(
    damage, problem: str, straight: Path, tiny_base, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(straight, run, ignore=shutil.ignore_patterns("checkpoint-6*"))
    shutil.copytree(straight / "checkpoint-6", run / "checkpoint-6")
    damage(run / "checkpoint-6")
    again = run_child(FAMILY, tiny_base(FAMILY), run)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resume_from=checkpoint-5" in again.stdout
    warning = [line for line in again.stderr.splitlines() if "skipped incomplete or damaged" in line]
    assert len(warning) == 1 and f"checkpoint-6 ({problem}" in warning[0] and "resuming from checkpoint-5" in warning[0]
    assert_identical(tensors(straight / "checkpoint-6"), tensors(run / "checkpoint-6"))  # the last step, redone
    assert last_complete_checkpoint(run) == run / "checkpoint-6"  # re-saved and sealed
