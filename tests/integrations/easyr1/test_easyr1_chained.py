"""chained.py: one EasyR1 run per stage, shards merged into a Hugging Face model between stages.

A stage's EasyR1 run needs GPUs and vLLM, so ``run_stage`` stands in for the child process: it loads the stage's
config exactly as the child's entry point would (``load_run_config``, ``check_config``, the data and the plan),
then leaves what EasyR1 leaves, written by EasyR1's own ``FSDPCheckpointManager``: ``global_step_N/actor`` shards
and ``checkpoint_tracker.json``. The chain then merges them (hf_export.py) and hands the model to the next stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import easyr1_lane as lane
import pytest
import torch
from transformers import Qwen2_5_VLForConditionalGeneration
from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

from vlm_capcurriculum.integrations.easyr1.chained import ChainError, run_chain
from vlm_capcurriculum.integrations.easyr1.config import check_config, check_plan, load_run_config
from vlm_capcurriculum.integrations.easyr1.layout import StageLayout
from vlm_capcurriculum.integrations.easyr1.main import load_data

pytestmark = pytest.mark.usefixtures("process_group")


class StageRuns:
    """Stands in for ``python -m vlm_capcurriculum.integrations.easyr1 config=<stage config>``."""

    def __init__(self, tokenizer, model_config, *, fail: int | None = None, stop_early: int | None = None) -> None:
        self.tokenizer, self.model_config = tokenizer, model_config
        self.fail, self.stop_early = fail, stop_early
        self.seen: list[dict] = []
        self.weights: list[dict[str, torch.Tensor]] = []

    def __call__(self, command: list[str]) -> int:
        config_arg = command[-1]
        assert command[1:3] == ["-m", "vlm_capcurriculum.integrations.easyr1"] and config_arg.startswith("config=")
        run = load_run_config([config_arg])  # what the child's entry point does first
        check_config(run)
        _, plan = load_data(run)
        check_plan(run, plan)
        config = run.config
        self.seen.append(
            {
                "model_path": config.worker.actor.model.model_path,
                "freeze_vision_tower": config.worker.actor.model.freeze_vision_tower,
                "lr": config.worker.actor.optim.lr,
                "stages": [stage.name for stage in run.spec.stages],
                "steps": plan.total_steps,
                "save": config.trainer.save_checkpoint_path,
            }
        )
        if self.fail == len(self.seen):
            return 1
        steps = plan.total_steps - (1 if self.stop_early == len(self.seen) else 0)
        module = lane.wrap_fsdp(lane.build_model(self.model_config, seed=len(self.seen)), use_orig_params=False)
        _, optimizer, scheduler = lane.build_actor(module)
        manager = FSDPCheckpointManager(
            model=module, optimizer=optimizer, lr_scheduler=scheduler, processing_class=self.tokenizer
        )
        save = Path(config.trainer.save_checkpoint_path)
        manager.save_checkpoint(str(save / f"global_step_{steps}" / "actor"), save_model_only=True)
        (save / "checkpoint_tracker.json").write_text(json.dumps({"last_global_step": steps}))
        self.weights.append(lane.full_state(module))
        return 0


@pytest.fixture
def chain(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(lane.REPO)
    base = lane.save_model_dir(tmp_path / "base")
    config = lane.sample_run_config(base, tmp_path / "run")
    config["curriculum"]["execution"] = "chained"
    config["curriculum"]["stages"][1]["overrides"]["lr"] = 3e-7
    run = load_run_config([f"config={lane.write_yaml(config, tmp_path / 'run.yaml')}"])
    _, plan = load_data(run)
    return run, plan, StageLayout(run.config.trainer.save_checkpoint_path), base


def test_each_stage_runs_from_the_previous_stages_merged_model(chain, tokenizer, model_config, tmp_path):
    run, plan, layout, base = chain
    stages = StageRuns(tokenizer, model_config)
    final = run_chain(run.node, run.spec, plan, layout, run_stage=stages)

    names = ["01-perception", "02-text_reasoning", "03-visual_reasoning"]
    hf = [str(tmp_path / "run" / "stages" / name) for name in names]
    assert final == hf[2]
    assert [seen["model_path"] for seen in stages.seen] == [str(base), hf[0], hf[1]]
    assert [seen["freeze_vision_tower"] for seen in stages.seen] == [False, True, False]  # EasyR1's own freeze
    assert [seen["lr"] for seen in stages.seen] == [1e-6, 3e-7, 1e-6]
    assert [seen["stages"] for seen in stages.seen] == [["perception"], ["text_reasoning"], ["visual_reasoning"]]
    assert [seen["steps"] for seen in stages.seen] == [stage.steps for stage in plan.stages] == [8, 4, 4]
    assert [seen["save"] for seen in stages.seen] == [str(tmp_path / "run" / "chained" / n / "easyr1") for n in names]
    for directory, trained in zip(hf, stages.weights, strict=True):  # each hand-off holds that stage's weights
        merged = Qwen2_5_VLForConditionalGeneration.from_pretrained(directory, torch_dtype=torch.float32).state_dict()
        assert all(torch.equal(merged[key], value.to(torch.bfloat16).float()) for key, value in trained.items())

    again = StageRuns(tokenizer, model_config)
    assert run_chain(run.node, run.spec, plan, layout, run_stage=again) == hf[2]
    assert again.seen == []  # finished stages are skipped


def test_a_failed_or_short_stage_stops_the_chain(chain, tokenizer, model_config):
    run, plan, layout, _ = chain
    with pytest.raises(ChainError, match="stage 'text_reasoning': its EasyR1 run exited with status 1"):
        run_chain(run.node, run.spec, plan, layout, run_stage=StageRuns(tokenizer, model_config, fail=2))
    resumed = StageRuns(tokenizer, model_config, stop_early=1)  # stage 1 is done: the next run is stage 2's
    with pytest.raises(ChainError, match="stage 'text_reasoning': its run stopped at step 3 of 4"):
        run_chain(run.node, run.spec, plan, layout, run_stage=resumed)
    assert [seen["stages"] for seen in resumed.seen] == [["text_reasoning"]]


def test_stage_configs_keep_exact_floats_after_easyr1_is_imported(tmp_path):
    import verl.utils.py_functional  # noqa: F401  (registers its rounding float representer with PyYAML)
    from omegaconf import OmegaConf

    from vlm_capcurriculum.integrations.easyr1.chained import save_stage_config

    node = OmegaConf.create({"lr": 0.0005, "small": 0.0001, "tiny": 1e-6, "kl": 0.01})
    assert "0.001" in OmegaConf.to_yaml(node)  # EasyR1's representer rounds OmegaConf's own dump
    save_stage_config(node, tmp_path / "config.yaml")
    assert OmegaConf.to_container(OmegaConf.load(tmp_path / "config.yaml")) == {
        "lr": 0.0005, "small": 0.0001, "tiny": 1e-6, "kl": 0.01,
    }  # fmt: skip
