"""chained.py: each stage's EasyR1 config in a chain (the paper's one-run-per-stage protocol)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from omegaconf import OmegaConf

from vlm_capcurriculum.curriculum import KNOBS, Overrides, load_curriculum_data, parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.easyr1.chained import NATIVE_KEYS, stage_command, stage_node
from vlm_capcurriculum.integrations.easyr1.layout import StageLayout


def _parent_node(tmp_path: Path):  # type: ignore[no-untyped-def]
    """The keys of EasyR1's config that a chain touches, as the merged config node holds them."""
    return OmegaConf.create(
        {
            "data": {"rollout_batch_size": 8, "val_files": "data_recipes/samples/visual_reasoning.jsonl"},
            "algorithm": {"kl_coef": 0.01},
            "worker": {
                "actor": {
                    "clip_ratio_low": 0.2,
                    "clip_ratio_high": 0.3,
                    "max_grad_norm": 1.0,
                    "model": {
                        "model_path": "/models/base",
                        "tokenizer_path": "/models/base",
                        "freeze_vision_tower": False,
                    },
                    "optim": {"lr": 1.0e-6},
                },
                "rollout": {"n": 5, "temperature": 1.0},
                "reward": {"reward_function_kwargs": {"format_weight": 0.1, "other": 1}},
            },
            "trainer": {
                "experiment_name": "exp",
                "save_checkpoint_path": str(tmp_path),
                "load_checkpoint_path": None,
                "max_steps": 16,
            },
            "curriculum": {"execution": "chained"},
        }
    )


def test_stage_configs_carry_the_stage_state_as_native_settings(sample_spec, tmp_path: Path) -> None:
    _, plan = plan_curriculum(sample_spec)
    layout = StageLayout(str(tmp_path))
    node = _parent_node(tmp_path)
    second = stage_node(node, sample_spec, plan.stages[1], model_path="/stages/01/hf", layout=layout)

    assert second.worker.actor.model.model_path == "/stages/01/hf"
    assert second.worker.actor.model.tokenizer_path is None
    assert second.worker.actor.model.freeze_vision_tower is True  # vision_tower: frozen -> EasyR1's own freeze
    assert second.worker.actor.optim.lr == 3e-7
    assert second.worker.rollout.n == 4  # per-stage group size: fine in a fresh run
    assert dict(second.worker.reward.reward_function_kwargs) == {"format_weight": 0.2, "other": 1}
    assert second.algorithm.kl_coef == 0.01 and second.worker.actor.clip_ratio_high == 0.3  # untouched
    assert second.trainer.save_checkpoint_path == f"{tmp_path}/chained/02-text_reasoning/easyr1"
    assert second.trainer.experiment_name == "exp-02-text_reasoning"
    assert second.trainer.max_steps is None and second.data.rollout_batch_size == 8
    block = OmegaConf.to_container(second.curriculum)
    assert block["execution"] == "single" and len(block["stages"]) == 1
    stage = block["stages"][0]
    assert stage["name"] == "text_reasoning" and stage["epochs"] == 1 and stage["order"] == "shuffle"
    assert all(Path(path).is_absolute() for path in stage["train_files"])
    assert "overrides" not in stage  # a fresh run starts with a fresh optimizer and the model as reference

    third = stage_node(node, sample_spec, plan.stages[2], model_path="/stages/02/hf", layout=layout)
    assert third.worker.actor.model.freeze_vision_tower is False  # not set by the stage: the configured value
    assert third.worker.actor.optim.lr == 1e-6 and third.worker.rollout.n == 5
    assert OmegaConf.to_container(third.curriculum)["stages"][0]["steps"] == 3
    assert node.worker.actor.model.model_path == "/models/base"  # the parent node is not modified


def test_every_state_knob_of_the_core_table_reaches_the_stage_runs_config(sample_spec, tmp_path: Path) -> None:
    values = {
        "vision_tower": "frozen",
        "lr": 2e-6,
        "lr_warmup_ratio": 0.1,
        "kl_coef": 0.05,
        "clip_ratio_low": 0.1,
        "clip_ratio_high": 0.4,
        "max_grad_norm": 0.5,
        "rollout_temperature": 0.7,
        "rollout_n": 3,
        "reward": {"format_weight": 0.3},
    }
    assert set(values) == set(KNOBS), "a new stage knob: map it to EasyR1's config in chained.py (and here)"
    _, plan = plan_curriculum(sample_spec)
    stage = dataclasses.replace(plan.stages[0], state=Overrides(**values))
    node = stage_node(_parent_node(tmp_path), sample_spec, stage, model_path="/m", layout=StageLayout(str(tmp_path)))

    assert {knob: OmegaConf.select(node, key) for knob, key in NATIVE_KEYS.items()} == {
        knob: values[knob] for knob in NATIVE_KEYS
    }
    assert node.worker.actor.model.freeze_vision_tower is True
    assert dict(node.worker.reward.reward_function_kwargs) == {"format_weight": 0.3, "other": 1}


def test_a_stage_run_trains_the_samples_the_one_run_plan_gives_that_stage(sample_spec, tmp_path: Path) -> None:
    data, plan = plan_curriculum(sample_spec)
    layout = StageLayout(str(tmp_path))
    for stage in plan.stages:
        node = stage_node(_parent_node(tmp_path), sample_spec, stage, model_path="/m", layout=layout)
        block = OmegaConf.to_container(node.curriculum)
        block.pop("execution")
        child_spec = parse_curriculum(block)
        child_data, child_plan = plan_curriculum(child_spec)
        offset = data.stages[stage.stage_index].offset
        parent_order = plan.indices[(stage.start_step - 1) * plan.batch_size : stage.end_step * plan.batch_size]
        assert child_plan.total_steps == stage.steps
        assert list(child_plan.indices) == [index - offset for index in parent_order], stage.name
        assert len(child_data) == len(load_curriculum_data(child_spec))


def test_stage_command_runs_the_entry_point_in_a_fresh_interpreter(tmp_path: Path) -> None:
    assert stage_command(tmp_path / "config.yaml") == [
        sys.executable,
        "-m",
        "vlm_capcurriculum.integrations.easyr1",
        f"config={tmp_path / 'config.yaml'}",
    ]


def test_the_chain_writes_one_steps_file_and_summary_from_its_stage_runs(sample_spec, tmp_path: Path) -> None:
    import json

    from vlm_capcurriculum.curriculum.run_layout import StepsLog, step_record
    from vlm_capcurriculum.integrations.easyr1.chained import write_chain_progress

    _, plan = plan_curriculum(sample_spec)
    layout = StageLayout(str(tmp_path))
    for stage in plan.stages[:2]:  # stages 1 and 2 ran (each run counts its steps from 1); stage 3 did not
        run = StageLayout(f"{layout.chained_run_dir(stage.position, stage.name)}/easyr1")
        log = StepsLog(run.root)
        log.resume_at(0)
        for local in range(1, stage.steps + 1):
            log.append(step_record(local, stage.name, 0, [f"{stage.name}-{local}"], 0.25 * stage.position, 0.5))
        validation = {"val/reward_score": 0.1 + stage.position}
        Path(run.summary_file).write_text(json.dumps({"stages": [{"validation": validation}]}))
    merged = Path(layout.stage_model(0, plan.stages[0].name))
    merged.mkdir(parents=True)
    (merged / "config.json").write_text("{}")
    (merged / "model.safetensors").write_bytes(b"")

    write_chain_progress(plan, layout)

    lines = StepsLog(tmp_path).read()
    first, second = plan.stages[:2]
    assert [line["step"] for line in lines] == list(range(1, second.end_step + 1))
    assert lines[first.end_step]["sample_ids"] == [f"{second.name}-1"]  # the stage run's step 1 is step k+1
    assert {(line["stage"], line["stage_index"]) for line in lines} == {(first.name, 1), (second.name, 2)}
    summary = json.loads(Path(layout.summary_file).read_text())
    assert summary["completed_steps"] == second.end_step and summary["total_steps"] == plan.total_steps
    assert [(entry["name"], entry["complete"], entry["reward_end"]) for entry in summary["stages"]] == [
        (first.name, True, 0.0),
        (second.name, True, 0.25),
    ]
    assert summary["stages"][0]["checkpoint"] == str(merged) and summary["stages"][1]["checkpoint"] is None
    assert summary["stages"][1]["validation"] == {"val/reward_score": 1.1}
