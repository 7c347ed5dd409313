"""``curriculum.execution=chained``: every stage is its own EasyR1 run, as the paper trained (fresh optimizer, LR
schedule and KL reference per stage), in a fresh process (vLLM and Ray free GPU memory reliably only at exit), with
the FSDP shards merged into a Hugging Face model between stages (docs/integrations/easyr1.md, "Chained execution").
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf, open_dict

from vlm_capcurriculum.curriculum import CurriculumSpec, Plan, PlannedStage, StageSpec, VisionTower
from vlm_capcurriculum.curriculum.data import expand_train_files
from vlm_capcurriculum.curriculum.run_layout import StepsLog

from .layout import RunProgress, StageLayout, has_weights

#: Stage knob -> EasyR1 config key of a fresh run; ``vision_tower`` and ``reward`` are set by :func:`stage_node`
#: itself. Every state knob of the core's table is one of these (tests/integrations/easyr1_offline checks it).
NATIVE_KEYS: dict[str, str] = {
    "lr": "worker.actor.optim.lr",
    "lr_warmup_ratio": "worker.actor.optim.lr_warmup_ratio",
    "kl_coef": "algorithm.kl_coef",
    "clip_ratio_low": "worker.actor.clip_ratio_low",
    "clip_ratio_high": "worker.actor.clip_ratio_high",
    "max_grad_norm": "worker.actor.max_grad_norm",
    "rollout_temperature": "worker.rollout.temperature",
    "rollout_n": "worker.rollout.n",
}


class ChainError(RuntimeError):
    """A stage run of the chain failed or left no checkpoint to hand on."""


def stage_block(spec: CurriculumSpec, stage: StageSpec, base_dir: Path) -> dict[str, Any]:
    """The one-stage ``curriculum:`` block of a chained stage run."""
    files = [str(path) for path in expand_train_files(stage, base_dir=base_dir)]
    entry: dict[str, Any] = {
        "name": stage.name,
        "capability": stage.capability,
        "train_files": files,
        "order": stage.order.value,
    }
    if stage.image_root is not None:
        entry["image_root"] = str((base_dir / os.path.expanduser(stage.image_root)).absolute())
    entry["epochs" if stage.epochs is not None else "steps"] = stage.epochs if stage.epochs is not None else stage.steps
    return {
        "mode": "staged",
        "batch_size": spec.batch_size,
        "seed": spec.seed,
        "order": spec.order.value,
        "execution": "single",
        "stages": [entry],
    }


def stage_node(
    node: DictConfig,
    spec: CurriculumSpec,
    stage: PlannedStage,
    *,
    model_path: str,
    layout: StageLayout,
) -> DictConfig:
    """The EasyR1 config (with its one-stage curriculum) of ``stage`` in a chain, resolved and self-contained (a staged
    curriculum: config.check_config)."""
    out = copy.deepcopy(node)
    state = stage.state
    with open_dict(out):
        out.curriculum = stage_block(spec, spec.stages[stage.stage_index], Path.cwd())
        out.worker.actor.model.model_path = model_path
        out.worker.actor.model.tokenizer_path = None  # EasyR1 then takes the model path's tokenizer
        out.trainer.save_checkpoint_path = f"{layout.chained_run_dir(stage.position, stage.name)}/easyr1"
        out.trainer.load_checkpoint_path = None
        out.trainer.max_steps = None  # the stage run sets it from its own plan
        out.data.rollout_batch_size = spec.batch_size
        out.trainer.experiment_name = f"{node.trainer.experiment_name}-{stage.position + 1:02d}-{stage.name}"
        for knob, value in state.knobs().items():  # the state knobs of the core's table that the stage sets
            if knob == "vision_tower":
                out.worker.actor.model.freeze_vision_tower = value == VisionTower.frozen.value
            elif knob == "reward":
                kwargs = OmegaConf.to_container(out.worker.reward.reward_function_kwargs, resolve=True) or {}
                out.worker.reward.reward_function_kwargs = {**kwargs, **value}  # type: ignore[dict-item]
            else:
                OmegaConf.update(out, NATIVE_KEYS[knob], value, merge=False)
    OmegaConf.resolve(out)
    return out


def save_stage_config(node: DictConfig, path: str | os.PathLike[str]) -> None:
    """Write a stage's config as YAML with exact floats: not ``OmegaConf.save``, whose dumper EasyR1 makes round floats
    to 3 decimals (docs/integrations/easyr1.md); ``yaml.SafeDumper`` writes ``repr``."""
    text = yaml.safe_dump(OmegaConf.to_container(node, resolve=True), sort_keys=False)
    Path(path).write_text(text, encoding="utf-8")


def stage_command(config_file: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-m", "vlm_capcurriculum.integrations.easyr1", f"config={config_file}"]


def run_chain(
    node: DictConfig,
    spec: CurriculumSpec,
    plan: Plan,
    layout: StageLayout,
    *,
    run_stage: Callable[[Sequence[str]], int] | None = None,
) -> str:
    """Run every stage in turn; returns the final model directory."""
    from verl.utils.checkpoint import find_latest_ckpt  # here: the rest of this module runs without EasyR1 (CI)

    from .hf_export import merge_actor_checkpoint

    runner = run_stage or (lambda command: subprocess.run(list(command), check=False).returncode)
    model_path = str(node.worker.actor.model.model_path)
    for stage in plan.stages:
        hf_dir = layout.stage_model(stage.position, stage.name)
        if has_weights(hf_dir):
            print(f"[curriculum] chain: stage {stage.name!r} is done ({hf_dir})")
            model_path = hf_dir
            continue
        stage_dir = Path(layout.chained_run_dir(stage.position, stage.name))
        stage_dir.mkdir(parents=True, exist_ok=True)
        config_file = stage_dir / "config.yaml"
        save_stage_config(stage_node(node, spec, stage, model_path=model_path, layout=layout), config_file)
        print(f"[curriculum] chain: stage {stage.position + 1}/{len(plan.stages)} {stage.name!r} from {model_path}")
        status = runner(stage_command(config_file))
        if status != 0:
            raise ChainError(f"stage {stage.name!r}: its EasyR1 run exited with status {status} (config {config_file})")
        checkpoint, info = find_latest_ckpt(str(stage_dir / "easyr1"))
        if checkpoint is None or info is None:
            raise ChainError(f"stage {stage.name!r}: no EasyR1 checkpoint in {stage_dir / 'easyr1'}")
        if int(info["last_global_step"]) != stage.steps:
            raise ChainError(
                f"stage {stage.name!r}: its run stopped at step {info['last_global_step']} of {stage.steps}; "
                "re-run the chain to resume it"
            )
        model_path = str(merge_actor_checkpoint(Path(checkpoint) / "actor", hf_dir))
        print(f"[curriculum] chain: stage {stage.name!r} merged into {model_path}")
        write_chain_progress(plan, layout)
    write_chain_progress(plan, layout)  # also when every stage was already done
    return model_path


def write_chain_progress(plan: Plan, layout: StageLayout) -> None:
    """The whole chain's ``curriculum_steps.jsonl`` and ``curriculum_summary.json`` under the parent's root, as one
    run writes them: every finished stage run's steps file, its steps renumbered to the plan's global steps (a stage
    run counts from 1), its stage-end validation, and the merged ``stages/NN-name`` folder as the checkpoint."""
    progress = RunProgress(layout, plan)
    progress.steps.resume_at(0)
    for stage in plan.stages:
        run_root = f"{layout.chained_run_dir(stage.position, stage.name)}/easyr1"
        lines = StepsLog(run_root).read()
        if not lines:
            break
        for line in lines:
            progress.steps.append(
                {**line, "step": stage.start_step + line["step"] - 1, "stage_index": stage.position + 1}
            )
        summary = Path(StageLayout(run_root).summary_file)
        entries = json.loads(summary.read_text(encoding="utf-8")).get("stages", []) if summary.is_file() else []
        if entries and entries[-1].get("validation"):
            progress.validations[stage.position] = entries[-1]["validation"]
    progress.write_summary()
