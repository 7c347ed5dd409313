"""CurriculumRayPPOTrainer in EasyR1's real fit() loop, with a recording worker group (trainer_harness.py).

One subprocess runs every scenario (it needs the vLLM placeholder and a local Ray for the reward actors):
``full`` trains 16 steps (perception 1-8, text reasoning 9-12 with lr 5e-7 and KL 0.05, visual reasoning 13-16
with reward kwargs format_weight=0.5); ``mid_stage`` is stopped at step 11 and resumed from global_step_10;
``boundary`` (trainer.val_freq=4) is stopped at step 9 while exporting stage 1 and resumed from global_step_8;
``mid_stage_damaged`` truncates the finished run's newest checkpoint and runs it again (vlm_capcurriculum.checkpoints).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import easyr1_lane as lane
import pytest

HERE = Path(__file__).parent
TEXT_STAGE = {"lr": 5e-7, "kl_coef": 0.05}
DATA_CALLS = {"generate_sequences", "compute_log_probs", "compute_ref_log_probs", "update_actor"}


@pytest.fixture(scope="module")
def results(tmp_path_factory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("trainer")
    model_dir = lane.save_model_dir(root / "model", processor=True)

    def config(name: str, save_freq: int, val_freq: int = -1) -> str:
        run = lane.sample_run_config(model_dir, root / name)  # our reward (the default), in EasyR1's reward actors
        run["trainer"].update(save_freq=save_freq, val_freq=val_freq)
        run["curriculum"]["stages"][1]["overrides"].update(TEXT_STAGE)
        run["curriculum"]["stages"][2]["overrides"]["reward"] = {"format_weight": 0.5}
        return str(lane.write_yaml(run, root / f"{name}.yaml"))

    scenarios = [
        {"name": "full", "config": config("full", 5)},
        {"name": "mid_stage_first", "config": config("mid_stage", 5), "interrupt": [11, "update_actor"]},
        {"name": "mid_stage_resumed", "config": config("mid_stage", 5)},
        {"name": "mid_stage_damaged", "config": config("mid_stage", 5), "damage": "dataloader.pt"},
        {"name": "boundary_first", "config": config("boundary", 4, 4), "interrupt": [9, "curriculum_save_hf_model"]},
        {"name": "boundary_resumed", "config": config("boundary", 4, 4)},
    ]
    output = root / "results.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.run(
        [sys.executable, str(HERE / "trainer_harness.py"), json.dumps(scenarios), str(model_dir), str(output)],
        capture_output=True,
        text=True,
        env=env,
        cwd=lane.REPO,
        timeout=900,
    )
    assert process.returncode == 0, process.stderr[-6000:]
    return json.loads(output.read_text())


def _calls(result: dict, step: int, *, data: bool = True) -> list[list]:
    return [
        [name, args, kwargs]
        for at, name, args, kwargs in result["calls"]
        if at == step and (data or name not in DATA_CALLS)
    ]


def _steps(result: dict) -> dict[int, dict]:
    """The training-step entries of EasyR1's file log (validation-only entries have no curriculum stage)."""
    return {entry["step"]: entry for entry in result["log"] if "stage" in entry.get("curriculum", {})}


def test_one_run_trains_the_plan_stage_by_stage(results):
    full = results["full"]
    assert full["outcome"] == "finished"
    assert full["training_steps"] == 16  # trainer.max_steps from the plan: EasyR1's LR horizon and progress bar
    assert full["step_samples"] == full["plan_batches"]  # every step trained exactly its planned samples
    assert (full["vision_mode"], full["use_orig_params"]) == ("per_stage", True)
    steps = _steps(full)
    assert sorted(steps) == list(range(1, 17))
    assert [steps[s]["curriculum"]["stage"] for s in range(1, 17)] == [0] * 8 + [1] * 4 + [2] * 4
    assert [steps[s]["curriculum"]["stage_step"] for s in (1, 8, 9, 12, 13, 16)] == [1, 8, 1, 4, 1, 4]
    assert [steps[s]["curriculum"]["vision_trainable"] for s in (8, 9, 13)] == [1.0, 0.0, 1.0]
    assert [steps[s]["curriculum"]["lr"] for s in (8, 9, 12, 13)] == [1e-6, 5e-7, 5e-7, 1e-6]  # unset = base
    assert [steps[s]["curriculum"]["kl_coef"] for s in (8, 9, 13)] == [0.01, 0.05, 0.01]


def test_per_stage_reward_metrics_and_the_stage_reward_switch(results):
    full = results["full"]
    steps = _steps(full)
    for step, entry in steps.items():
        stage = ("perception", "text_reasoning", "visual_reasoning")[entry["curriculum"]["stage"]]
        reward = entry["reward"]
        assert entry["curriculum"]["reward"][stage]["overall"] == reward["overall"], step
        weight = 0.5 if step >= 13 else 0.1  # EasyR1's reward actor got format_weight=0.5 for the last stage
        assert reward["overall"] == pytest.approx((1 - weight) * reward["accuracy"] + weight * reward["format"]), step
    assert 0 < steps[1]["reward"]["format"] < 1  # the scripted responses mix formats: the metric is not constant
    for step, capability in ((1, "perception"), (9, "text_reasoning"), (13, "visual_reasoning")):
        # our reward's per-capability key, averaged by EasyR1's reward manager over the samples that have it
        per_capability = {f"accuracy_{name}" for name in ("perception", "text_reasoning", "visual_reasoning")}
        assert per_capability & set(steps[step]["reward"]) == {f"accuracy_{capability}"}, step
        assert steps[step]["reward"][f"accuracy_{capability}"] == steps[step]["reward"]["accuracy"]
    assert full["reward_kwargs"] == {"format_weight": 0.5}
    assert full["val_reward_kwargs"] == {}  # validation keeps the configured reward


def test_stage_ends_export_models_and_validate(results):
    full = results["full"]
    assert full["stage_models"] == [
        "stages/01-perception",
        "stages/02-text_reasoning",
        "stages/03-visual_reasoning",
    ]
    assert [info["global_step"] for info in full["stage_json"].values()] == [8, 12, 16]
    validations = [entry["step"] for entry in full["log"] if "reward_score" in entry.get("val", {})]
    assert validations == [0, 8, 12, 16]  # before training (EasyR1), stage ends 1 and 2 (ours), after training
    stage_validations = [entry["step"] for entry in full["log"] if "validated_stage" in entry.get("curriculum", {})]
    assert stage_validations == [8, 12]


def test_boundary_work_runs_before_the_update_with_the_rollout_engine_released(results):
    full = results["full"]
    root = Path(full["stage_json"]["01-perception"]["model"]).parents[1]
    assert _calls(full, 9, data=False)[:5] == [
        ["prepare_rollout_engine", [], {}],  # fit() loads the engine before _make_batch_data...
        ["release_rollout_engine", [], {}],  # ...we release it for the boundary work
        ["curriculum_save_hf_model", [f"{root}/stages/01-perception"], {"overwrite": True}],
        ["prepare_rollout_engine", [], {}],  # stage-end validation (EasyR1's _validate)
        ["release_rollout_engine", [], {}],
    ]
    assert _calls(full, 9, data=False)[5:] == [
        ["curriculum_set_vision_trainable", [False], {}],
        ["curriculum_set_lr", [5e-7], {}],
        ["curriculum_set_actor_knobs", [{"kl_coef": 0.05}], {}],
        ["curriculum_reset_optimizer", [], {}],
        ["curriculum_refresh_reference", [], {}],  # the stage-1 model is the reference snapshot: no extra save
        ["prepare_rollout_engine", [], {}],
        ["release_rollout_engine", [], {}],
    ]
    assert [call[0] for call in _calls(full, 9) if call[0] in DATA_CALLS] == [
        "generate_sequences",  # validation
        "generate_sequences",  # the step's rollout, after every boundary operation
        "compute_log_probs",
        "compute_ref_log_probs",
        "update_actor",
    ]
    last = [call[0] for call in _calls(full, 16, data=False)]
    assert last[-2:] == ["save_checkpoint", "curriculum_save_hf_model"]  # after fit(): the last stage's model
    assert "curriculum_load_reference" not in {name for _, name, _, _ in full["calls"]}  # a fresh run reloads nothing


def test_resume_inside_a_stage_restores_its_state_and_reference(results):
    first, resumed, full = results["mid_stage_first"], results["mid_stage_resumed"], results["full"]
    assert first["outcome"] == "interrupted at step 11 in update_actor"
    root = Path(full["stage_json"]["01-perception"]["model"]).parents[1]
    mid = root.parent / "mid_stage"
    assert resumed["outcome"] == "finished"
    assert _calls(resumed, 10, data=False) == [
        ["load_checkpoint", [f"{mid}/global_step_10/actor"], {}],
        ["curriculum_load_reference", [f"{mid}/stages/01-perception"], {}],  # EasyR1 does not checkpoint it
        ["prepare_rollout_engine", [], {}],  # EasyR1's validation before (resumed) training
        ["release_rollout_engine", [], {}],
    ]
    assert _calls(resumed, 11, data=False) == [
        ["prepare_rollout_engine", [], {}],
        ["release_rollout_engine", [], {}],
        ["curriculum_set_vision_trainable", [False], {}],  # the stage's state, re-applied to fresh workers
        ["curriculum_set_lr", [5e-7], {}],
        ["curriculum_set_actor_knobs", [{"kl_coef": 0.05}], {}],
        ["prepare_rollout_engine", [], {}],  # and no reset_optimizer / refresh_reference mid-stage
        ["release_rollout_engine", [], {}],
    ]
    for step in range(12, 17):  # from then on exactly the uninterrupted run
        assert _replace(_calls(resumed, step), mid, root) == _calls(full, step), step
    assert {s: resumed["step_samples"][s] for s in map(str, range(11, 17))} == {
        s: full["plan_batches"][s] for s in map(str, range(11, 17))
    }
    full_steps, resumed_steps = _steps(full), _steps(resumed)
    for step in range(11, 17):
        assert resumed_steps[step]["curriculum"] == full_steps[step]["curriculum"], step
        assert resumed_steps[step]["reward"] == full_steps[step]["reward"], step


def test_resume_at_a_stage_boundary_writes_the_missing_stage_model(results):
    first, resumed = results["boundary_first"], results["boundary_resumed"]
    assert first["outcome"] == "interrupted at step 9 in curriculum_save_hf_model"
    assert first["stage_models"] == []
    root = Path(resumed["stage_json"]["01-perception"]["model"]).parents[1]
    assert _calls(resumed, 8, data=False) == [
        ["load_checkpoint", [f"{root}/global_step_8/actor"], {}],
        ["curriculum_save_hf_model", [f"{root}/stages/01-perception"], {"overwrite": True}],  # weights after step 8
        ["prepare_rollout_engine", [], {}],  # EasyR1's validation before (resumed) training
        ["release_rollout_engine", [], {}],
    ]
    assert [call[0] for call in _calls(resumed, 9, data=False)] == [
        "prepare_rollout_engine",
        "release_rollout_engine",
        "curriculum_set_vision_trainable",
        "curriculum_set_lr",
        "curriculum_set_actor_knobs",
        "curriculum_reset_optimizer",  # the boundary's start actions run as in an uninterrupted run
        "curriculum_refresh_reference",
        "prepare_rollout_engine",
        "release_rollout_engine",
    ]
    assert resumed["stage_json"]["01-perception"]["global_step"] == 8
    assert len(resumed["stage_models"]) == 3
    # val_freq=4: EasyR1 validates steps 12 and 16 itself, so the stage ends add no second validation
    validations = [entry["step"] for entry in resumed["log"] if "reward_score" in entry.get("val", {})]
    assert validations == [8, 12, 16]  # 8: EasyR1's validation before the resumed training
    assert not [entry for entry in resumed["log"] if "validated_stage" in entry.get("curriculum", {})]
    assert [call[0] for call in _calls(resumed, 13)].count("generate_sequences") == 1
    assert resumed["step_samples"] == {s: b for s, b in resumed["plan_batches"].items() if int(s) >= 9}


def _replace(calls: list, old: Path, new: Path) -> list:
    return json.loads(json.dumps(calls).replace(str(old), str(new)))


def test_a_damaged_newest_checkpoint_resumes_from_the_previous_complete_one(results):
    damaged = results["mid_stage_damaged"]
    newest = Path(damaged["damaged"])
    loads = [args[0] for _, name, args, _ in damaged["calls"] if name == "load_checkpoint"]
    assert len(loads) == 1 and Path(loads[0]).parent.parent == newest.parent
    assert int(Path(loads[0]).parent.name[12:]) < int(newest.name[12:])  # the one before, not the damaged one
    assert damaged["outcome"] == "finished"
