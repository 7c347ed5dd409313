"""Runs EasyR1's real ``fit()`` loop in :class:`CurriculumRayPPOTrainer` without GPU workers (a subprocess of
test_easyr1_trainer.py: it installs the test-only vLLM placeholder, so never import it in the test process).

Real: our entry point's preparation (config, data file, overlong filter, plan), ``runner.build_trainer`` (EasyR1's
tokenizer/processor loaders, our loaders with the curriculum sampler, two reward actors of our
``CurriculumRewardManager`` on a local Ray, the trainer), EasyR1's ``fit``/``_validate``/``_save_checkpoint``/
``_load_checkpoint`` with ``dataloader.pt``, its advantage computation and its file logger.

Stood in: the actor worker group (FSDPWorker + vLLM need GPUs). :class:`RecordingWorkerGroup` accepts only the
method names ``CurriculumFSDPWorker`` registers for driver calls (``@register``), answers with the dispatch
mode's shape (one result per rank for ``ONE_TO_ALL``), enforces the rollout engine's load/offload alternation
exactly as EasyR1's ``FSDPVLLMShardingManager`` asserts it, and generates scripted responses. The worker methods
themselves are tested on real FSDP modules in test_easyr1_worker.py / test_easyr1_engine_ops.py (worker_mixin.py).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import lane_placeholders

lane_placeholders.install("vllm", "qwen_vl_utils")

import easyr1_lane  # noqa: E402
import numpy as np  # noqa: E402
import ray  # noqa: E402
import torch  # noqa: E402
from verl.protocol import DataProto  # noqa: E402
from verl.single_controller.base.decorator import MAGIC_ATTR, Dispatch  # noqa: E402

from vlm_capcurriculum.integrations.easyr1.config import load_run_config  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.hf_export import write_hf_model_dir  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.layout import has_weights  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.main import prepare  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.runner import build_trainer  # noqa: E402
from vlm_capcurriculum.integrations.easyr1.worker import CurriculumFSDPWorker  # noqa: E402

# Scripted responses, cycled over the samples: right format with a letter, right format with a number, no format.
RESPONSES = ("<think>look</think> \\boxed{A}", "<think>add</think> \\boxed{20}", "\\boxed{B}")


class Interrupted(RuntimeError):
    """The harness stops a run here (a crash, or a preempted job)."""


class PerRank(list):
    """A ONE_TO_ALL result that differs between ranks."""


class RecordingWorkerGroup:
    """Stands in for ``trainer.actor_rollout_ref_wg``; see the module docstring."""

    world_size = 2

    def __init__(self, trainer: Any, model_dir: str, interrupt: tuple[int, str] | None = None) -> None:
        self.trainer = trainer
        self.tokenizer = trainer.tokenizer
        self.processor = trainer.processor
        self.model_dir = model_dir
        self.interrupt = interrupt
        self.loaded = False
        self.calls: list[list[Any]] = []
        self.step_samples: dict[int, list[int]] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(CurriculumFSDPWorker, name, None)
        attrs = getattr(method, MAGIC_ATTR, None)
        if attrs is None:
            raise AttributeError(f"{name!r} is not a driver-callable method of CurriculumFSDPWorker")
        behaviour = getattr(self, f"_{name}")

        def call(*args: Any, **kwargs: Any) -> Any:
            step = self.trainer.global_step
            self.calls.append([step, name, [_plain(arg) for arg in args], {k: _plain(v) for k, v in kwargs.items()}])
            if self.interrupt == (step, name):
                raise Interrupted(f"interrupted at step {step} in {name}")
            result = behaviour(*args, **kwargs)
            if attrs["dispatch_mode"] is Dispatch.ONE_TO_ALL:
                return list(result) if isinstance(result, PerRank) else [result] * self.world_size
            return result

        return call

    # --- rollout engine (EasyR1's sharding manager asserts exactly these) -------------------------------------
    def _prepare_rollout_engine(self) -> None:
        assert self.loaded is False, "vllm engine has already been loaded"
        self.loaded = True

    def _release_rollout_engine(self) -> None:
        assert self.loaded is True, "vllm engine has not been loaded"
        self.loaded = False

    def _generate_sequences(self, prompts: DataProto) -> DataProto:
        assert self.loaded, "generate_sequences needs the rollout engine loaded"
        config = self.trainer.config
        n = int(prompts.meta_info.get("n", config.worker.rollout.n))
        length = config.data.max_response_length
        input_ids = prompts.batch["input_ids"].repeat_interleave(n, dim=0)
        attention_mask = prompts.batch["attention_mask"].repeat_interleave(n, dim=0)
        position_ids = prompts.batch["position_ids"].repeat_interleave(n, dim=0)
        rows = input_ids.size(0)
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        responses = torch.full((rows, length), pad, dtype=torch.long)
        response_mask = torch.zeros((rows, length), dtype=attention_mask.dtype)
        for row in range(rows):
            ids = self.tokenizer.encode(RESPONSES[(row // n + row % n) % len(RESPONSES)], add_special_tokens=False)
            ids = [*ids, eos][:length]
            responses[row, : len(ids)] = torch.tensor(ids)
            response_mask[row, : len(ids)] = 1
        delta = torch.arange(1, length + 1).view(1, -1).expand(rows, -1)
        if position_ids.dim() == 3:  # Qwen mrope: (rows, 4, seq)
            delta = delta.view(rows, 1, -1).expand(rows, position_ids.size(1), -1)
        tensors = {
            "prompts": input_ids,
            "responses": responses,
            "input_ids": torch.cat([input_ids, responses], dim=-1),
            "attention_mask": torch.cat([attention_mask, response_mask], dim=-1),
            "response_mask": response_mask,
            "position_ids": torch.cat([position_ids, position_ids[..., -1:] + delta], dim=-1),
        }
        non_tensors = {}
        if "multi_modal_data" in prompts.non_tensor_batch:
            non_tensors["multi_modal_data"] = np.repeat(prompts.non_tensor_batch["multi_modal_data"], n, axis=0)
        return DataProto.from_dict(tensors=tensors, non_tensors=non_tensors, meta_info=dict(prompts.meta_info))

    # --- experience and update ------------------------------------------------------------------------------
    def _compute_log_probs(self, data: DataProto) -> DataProto:
        n = self.trainer.config.worker.rollout.n
        self.step_samples[self.trainer.global_step] = sorted(
            {int(i) for i in data.non_tensor_batch["curriculum_index"]}
        )
        assert len(data) % n == 0
        return DataProto.from_dict(
            tensors={"old_log_probs": torch.zeros_like(data.batch["responses"], dtype=torch.float)}
        )

    def _compute_ref_log_probs(self, data: DataProto) -> DataProto:
        return DataProto.from_dict(
            tensors={"ref_log_probs": torch.zeros_like(data.batch["responses"], dtype=torch.float)}
        )

    def _update_actor(self, data: DataProto) -> DataProto:
        assert not self.loaded, "the update runs with the rollout engine released"
        return DataProto(non_tensor_batch={"actor/pg_loss": np.array([0.0]), "actor/lr": np.array([1e-6])})

    # --- checkpoints ----------------------------------------------------------------------------------------
    def _save_checkpoint(self, path: str, save_model_only: bool = False) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "stand_in_shards.txt").write_text(f"step {self.trainer.global_step}\n")

    def _load_checkpoint(self, path: str) -> None:
        assert (Path(path) / "stand_in_shards.txt").is_file(), path

    # --- curriculum operations ------------------------------------------------------------------------------
    def _curriculum_set_vision_trainable(self, trainable: bool) -> bool:
        return bool(trainable)

    def _curriculum_set_lr(self, lr: float) -> list[float]:
        return [lr]

    def _curriculum_set_actor_knobs(self, knobs: dict[str, float]) -> dict[str, float]:
        return {name: 0.0 for name in knobs}

    def _curriculum_reset_optimizer(self) -> int:
        return 7

    def _curriculum_refresh_reference(self) -> bool:
        return True

    def _curriculum_load_reference(self, path: str) -> bool:
        assert has_weights(path), path
        return True

    def _curriculum_save_hf_model(self, path: str, dtype: str = "bfloat16", overwrite: bool = False) -> PerRank:
        tokenizer = easyr1_lane.build_tokenizer()
        model = easyr1_lane.build_model(easyr1_lane.build_config(tokenizer))
        write_hf_model_dir(path, model.state_dict(), model.config, processing_class=self.processor, overwrite=overwrite)
        return PerRank([path] + [None] * (self.world_size - 1))  # rank 0 writes


def _plain(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return type(value).__name__


def run(
    config_file: str, model_dir: str, interrupt: tuple[int, str] | None, damage: str | None = None
) -> dict[str, Any]:
    run_config = load_run_config([f"config={config_file}"])
    prepared = prepare(run_config)
    config = run_config.config
    damaged = None
    if damage:  # truncate this file of the newest checkpoint, as a full disk or a cut-short copy would
        damaged = max(Path(config.trainer.save_checkpoint_path).glob("global_step_*"), key=lambda p: int(p.name[12:]))
        target = damaged / damage
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    trainer = build_trainer(config, prepared.plan, config.data.train_files)
    group = RecordingWorkerGroup(trainer, model_dir, interrupt)
    trainer.actor_rollout_ref_wg = group  # instead of init_workers(), which would start FSDPWorkers with vLLM
    outcome = "finished"
    try:
        trainer.fit()
    except Interrupted as error:
        outcome = str(error)
    root = Path(config.trainer.save_checkpoint_path)
    log = root / "experiment_log.jsonl"
    result = {
        "outcome": outcome,
        "damaged": None if damaged is None else str(damaged),
        "calls": group.calls,
        "step_samples": {str(step): samples for step, samples in group.step_samples.items()},
        "plan_batches": {
            str(step): sorted(prepared.plan.batch(step)) for step in range(1, prepared.plan.total_steps + 1)
        },
        "log": [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else [],
        "training_steps": config.worker.actor.optim.training_steps,
        "reward_kwargs": ray.get(trainer.reward_fn.reward_kwargs.remote()),
        "val_reward_kwargs": ray.get(trainer.val_reward_fn.reward_kwargs.remote()),
        "stage_models": sorted(str(path.relative_to(root)) for path in root.glob("stages/*") if has_weights(path)),
        "stage_json": {
            path.parent.name: json.loads(path.read_text()) for path in sorted(root.glob("stages/*/stage.json"))
        },
        "vision_mode": prepared.vision,
        "use_orig_params": config.worker.actor.fsdp.use_orig_params,
    }
    # a stopped run leaves its loader workers and reward actors behind, as a crashed process would release them
    iterator = getattr(trainer, "data_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    for actor in (trainer.reward_fn, trainer.val_reward_fn):
        ray.kill(actor)
    return result


def main() -> None:
    """argv: a JSON list of scenarios [{"name", "config", "interrupt": [step, method] | null, "damage": file in
    the newest checkpoint to truncate first | null}], model dir, output."""
    scenarios, model_dir, output = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    easyr1_lane.register_processor()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)  # logical CPUs: two reward actors per run
    results = {}
    for scenario in scenarios:
        interrupt = tuple(scenario["interrupt"]) if scenario.get("interrupt") else None
        start = time.perf_counter()
        results[scenario["name"]] = run(scenario["config"], model_dir, interrupt, scenario.get("damage"))
        print(f"harness: {scenario['name']} took {time.perf_counter() - start:.1f} s", file=sys.stderr)
    ray.shutdown()
    Path(output).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
