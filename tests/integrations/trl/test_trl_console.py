"""What a TRL run tells a person: a bad model path, Ctrl-C, a finished run, the step line and the stage banner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trl_helpers import REPO

from vlm_capcurriculum.checkpoints import seal
from vlm_capcurriculum.cli import main
from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.trl import launch as trl_launch
from vlm_capcurriculum.integrations.trl.console import stage_banner, step_line

CONFIG = str(REPO / "recipes" / "config.yaml")
TRAIN = ["train", "--config", CONFIG, "backend=trl", "model=tiny_qwen3_vl"]


pytestmark = pytest.mark.usefixtures("recipe_run")  # from the repository root, OUTPUT_DIR in tmp


def fake_checkpoint(output: Path, completed_steps: int) -> Path:
    folder = output / f"checkpoint-{completed_steps}"
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": completed_steps}))
    (folder / "curriculum_state.json").write_text(json.dumps({"version": 1, "completed_steps": completed_steps}))
    seal(folder)  # complete, as TRL's saves are (vlm_capcurriculum.checkpoints)
    return folder


def test_a_model_path_that_does_not_exist_is_named(capsys) -> None:
    assert main([*TRAIN, "model.path=/nonexistent/model", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.path '/nonexistent/model' is not a directory" in err[0]


def test_a_folder_without_config_is_not_a_model(tmp_path: Path, capsys) -> None:
    assert main([*TRAIN, f"model.path={tmp_path}", "--dry-run"]) == 2
    assert "holds no config.json" in capsys.readouterr().err


def test_a_finished_run_says_it_is_complete_and_trains_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(trl_launch, "build_trainer", lambda *a, **k: pytest.fail("a finished run built a trainer"))
    fake_checkpoint(tmp_path / "out", 180)  # the quick start's 180 steps
    assert main(TRAIN) == 0
    out = capsys.readouterr().out
    assert "this run is complete: all 180 steps are done" in out and "use a new OUTPUT_DIR" in out
    assert "train_runtime" not in out


def test_ctrl_c_ends_with_the_step_and_the_checkpoint_to_resume_from(tmp_path: Path, capsys, monkeypatch) -> None:
    checkpoint = fake_checkpoint(tmp_path / "out", 4)

    class Interrupted:
        curriculum_step = 7

        def train(self, resume_from_checkpoint=None):
            raise KeyboardInterrupt

    monkeypatch.setattr(trl_launch, "build_trainer", lambda *a, **k: Interrupted())
    assert main(TRAIN) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"TRL: interrupted at step 7; run the same command again to resume from checkpoint {checkpoint}"


def test_step_line_and_stage_banner() -> None:
    config = load_config(CONFIG, ["backend=trl", "model=tiny_qwen3_vl"])
    _, plan = plan_curriculum(parse_curriculum(config.curriculum))
    line = step_line(plan, 70, reward=0.4123, accuracy=0.375, length=38.2, seconds=2.14)
    assert line == "[2/3 text_reasoning] step  70/180  reward 0.412  acc 0.375  len 38  2.1s"
    first, second = plan.stages[0], plan.stages[1]
    banner = stage_banner(plan, second, base_lr=1e-6)
    assert banner.startswith(
        "== stage 2/3 text_reasoning (text_reasoning): steps 61-120; vision tower frozen, lr 1e-06"
    )
    assert "optimizer reset" in banner and "KL reference refreshed" in banner and "checkpoint, validation" in banner
    assert "optimizer reset" not in stage_banner(plan, first, base_lr=1e-6)  # nothing to reset before step 1
    resumed = stage_banner(plan, second, base_lr=1e-6, resumed_at=80)
    assert "resumed after step 80" in resumed and "optimizer reset" not in resumed
