"""The ``capcurriculum`` trainer mode on CPU: verl's real v1 trainer (constructor, dataloader, ``fit`` loop,
checkpoint save/resume of ``data.pt``) built without workers, as in verl's
``tests/trainer/ppo/v1/test_trainer_base_on_cpu.py``. Only what needs GPUs or Ray is replaced: the actor worker
group (a recorder that accepts only methods the real worker registers), the rollout weight sync, prompt submission
to the agent loop, the PPO update of one step, and TransferQueue metric reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

import pytest

pytest.importorskip("verl")

import verl.trainer.ppo.v1.trainer_base as trainer_base
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
from verl_doubles import RecordingCheckpointManager, RecordingWorkerGroup

import vlm_capcurriculum.integrations.verl.trainer as trainer_module
from vlm_capcurriculum.integrations.verl.trainer import (
    CapCurriculumTrainer,
    CurriculumConfigError,
    reward_extra_metrics,
)
from vlm_capcurriculum.integrations.verl.worker import CapCurriculumActorRolloutRefWorker

HERE = Path(__file__).parent


class WorkerlessTrainer(CapCurriculumTrainer):
    """The real trainer minus GPU/Ray work: prompts are recorded instead of sent to rollout, one step's PPO
    pipeline keeps verl's hook order (``on_sample_begin``, sample, ``on_sample_end``, then the training stages) with
    the sample and the training stages recorded as events, and TransferQueue metric reads are skipped."""

    def attach(self, events: list[tuple[Any, ...]], processor: Any) -> None:
        self.events = events
        self.rollout_ids: dict[int, list[str]] = {}
        self.tokenizer, self.processor = processor.tokenizer, processor
        self._init_dataloader()
        self._init_dump_executor()
        self.actor_rollout_wg = RecordingWorkerGroup(events=events)
        self.checkpoint_manager = RecordingCheckpointManager(events)

    def _submit_batch_to_rollout(self, batch: Any) -> int:
        ids = [info["id"] for info in batch["extra_info"]]
        self.rollout_ids[self.global_steps] = ids
        self.events.append(("rollout", self.global_steps))
        return len(ids)

    def _step_once(self, metrics: dict, timing_raw: dict, sample_batch_size: int) -> KVBatchMeta:
        self.on_sample_begin()
        self.events.append(("sample", self.global_steps))
        self.on_sample_end()
        self.events.append(("update", self.global_steps))
        metrics["actor/pg_loss"] = 0.0
        keys = self.rollout_ids[self.global_steps]
        return KVBatchMeta(partition_id="train", keys=keys, tags=[{} for _ in keys])

    def _compute_metrics(self, batch: Any, metrics: dict, timing_raw: dict, global_steps: int, epoch: int) -> None:
        metrics["training/global_step"] = global_steps

    def _validate(self) -> dict[str, float]:
        self.events.append(("validate", self.global_steps))
        return {"val-core/perception/reward/mean@1": 0.25}


class RecordingTracking:
    """Stands where verl's ``Tracking`` logger would be."""

    logged: ClassVar[list[tuple[int, dict]]] = []

    def __init__(self, **kwargs: Any) -> None:
        RecordingTracking.logged = []

    def log(self, data: dict, step: int) -> None:
        RecordingTracking.logged.append((step, dict(data)))


class _TransferQueue:
    """Stands where TransferQueue would be: the rollout of each sample stored the reward's extra info."""

    @staticmethod
    def kv_clear(keys: list, partition_id: str) -> None:
        return None

    @staticmethod
    def kv_batch_get(keys: list, partition_id: str, select_fields: list) -> dict:
        assert select_fields == ["extra_fields"]
        fields = []
        for key in keys:  # sample ids as keys (see WorkerlessTrainer._step_once)
            capability = key.rsplit("-", 1)[0]
            info = {"score": 1.0, "accuracy": 1.0 if capability == "perception" else 0.0, f"accuracy/{capability}": 0.5}
            fields.append({"reward_extra_info": info, "num_turns": 2})
        return {"extra_fields": fields}


STAGES = [
    # perception: 6 rows x 1 epoch / batch 2 = steps 1-3
    "{name: perception, file_index: 0, rows: 6, epochs: 1, overrides: {vision_tower: trainable, lr: 1.0e-6},"
    " at_end: {save_checkpoint: true}}",
    # text reasoning: steps 4-5, tower frozen (paper), KL and clip changed, reference refreshed, validate at end
    "{name: text_reasoning, file_index: 1, rows: 4, epochs: 1, overrides: {vision_tower: frozen, lr: 3.0e-7,"
    " kl_coef: 0.05, clip_ratio_low: 0.15, clip_ratio_high: 0.15, max_grad_norm: 0.5, reset_optimizer: true,"
    " refresh_reference: true}, at_end: {validate: true}}",
    # visual reasoning: steps 6-7
    "{name: visual_reasoning, file_index: 2, rows: 4, epochs: 1, overrides: {vision_tower: trainable}}",
]


def _config(verl_config: Any, stage_files: dict[str, Path], tmp_path: Path, *extra: str) -> Any:
    return verl_config(
        [
            f"data.train_files=[{stage_files['perception']},{stage_files['text_reasoning']},"
            f"{stage_files['visual_reasoning']}]",
            f"data.val_files=[{stage_files['val']}]",
            f"curriculum.order.path={HERE / 'verl_doubles.py'}",
            "curriculum.order.name=reversed_stage_order",
            "+curriculum.batch_size=2",
            f"+curriculum.stages=[{','.join(STAGES)}]",
            f"trainer.default_local_dir={tmp_path / 'ckpt'}",
            "trainer.val_before_train=false",
            "trainer.test_freq=-1",
            "trainer.save_freq=2",
            "trainer.resume_mode=auto",
            *extra,
        ]
    )


def _expected_ids() -> dict[int, list[str]]:
    perception = [f"perception-{i}" for i in range(5, -1, -1)]
    text = [f"text_reasoning-{i}" for i in range(3, -1, -1)]
    visual = [f"visual_reasoning-{i}" for i in range(3, -1, -1)]
    rows = perception + text + visual
    return {step: rows[2 * (step - 1) : 2 * step] for step in range(1, 8)}


def _run(config: Any, processor: Any) -> tuple[WorkerlessTrainer, list[tuple[Any, ...]]]:
    events: list[tuple[Any, ...]] = []
    trainer = WorkerlessTrainer(config)
    trainer.attach(events, processor)
    trainer._load_checkpoint()
    trainer.on_init_end()
    with (
        patch.object(trainer_base, "Tracking", RecordingTracking),
        patch.object(trainer_base, "tq", _TransferQueue),
        patch.object(trainer_module, "tq", _TransferQueue),
    ):
        trainer.fit(agent_loop_manager=None)
    return trainer, events


def test_trainer_mode_is_registered_and_takes_verls_sync_paths(verl_config: Any, stage_files: dict, tmp_path: Path):
    assert get_trainer_cls("capcurriculum") is CapCurriculumTrainer
    trainer = CapCurriculumTrainer(_config(verl_config, stage_files, tmp_path))
    assert trainer.selected_trainer_mode == "capcurriculum"
    assert trainer.trainer_mode == "sync"  # verl's base branches on this name
    assert type(trainer.replay_buffer) is ReplayBuffer
    assert trainer.parameter_sync_step == 1


def test_worker_class_replaces_verls_actor_worker(verl_config: Any, stage_files: dict, tmp_path: Path):
    from verl.trainer.ppo.utils import Role

    trainer = CapCurriculumTrainer(_config(verl_config, stage_files, tmp_path))
    trainer._init_resource_pool_mgr()
    # use_kl_loss=true with the hybrid engine: verl maps the fused actor+rollout+ref role
    worker = trainer.role_worker_mapping[Role.ActorRolloutRef]
    assert worker.__ray_actor_class__ is CapCurriculumActorRolloutRefWorker


def test_missing_driver_and_async_layout_are_config_errors(verl_config: Any, stage_files: dict, tmp_path: Path):
    config = _config(verl_config, stage_files, tmp_path, "curriculum.driver.path=null")
    with pytest.raises(CurriculumConfigError, match=r"curriculum\.driver\.path"):
        CapCurriculumTrainer(config)
    config = _config(verl_config, stage_files, tmp_path, "actor_rollout_ref.hybrid_engine=false")
    with pytest.raises(CurriculumConfigError, match="hybrid_engine"):
        CapCurriculumTrainer(config)


def test_unsupported_stage_override_fails_before_any_worker(verl_config: Any, stage_files: dict, tmp_path: Path):
    stages = "[{name: s, file_index: 0, rows: 6, epochs: 1, overrides: {rollout_temperature: 0.7, kl_coef: 0.1}}]"
    config = _config(
        verl_config, stage_files, tmp_path, f"curriculum.stages={stages}", "actor_rollout_ref.actor.use_kl_loss=false"
    )
    with pytest.raises(ValueError, match=r"stage 's': rollout_temperature=0.7: cannot change.*kl_coef: not supported"):
        CapCurriculumTrainer(config)


def test_fit_drives_stages_in_verls_hook_order(verl_config: Any, stage_files: dict, tmp_path: Path, tiny_processor):
    trainer, events = _run(_config(verl_config, stage_files, tmp_path), tiny_processor)
    driver = trainer.stage_driver

    # the dataloader served the plan's order (reversed within each stage), one batch per step
    assert trainer.rollout_ids == _expected_ids()
    # driver calls: train_begin once at step 1, then per step begin -> end (end sees the step's update metrics)
    assert driver.calls[0] == ("train_begin", 1)
    assert driver.calls[1:4] == [("step_begin", 1), ("step_end", 1, True), ("step_begin", 2)]
    # a stage starts after the step's rollout, with the replicas asleep, and before its update
    step4 = events[events.index(("rollout", 4)) : events.index(("update", 4)) + 1]
    assert step4[:3] == [("rollout", 4), ("sample", 4), ("sleep_replicas",)]
    assert ("worker", "cc_set_vision_trainable") in step4 and step4[-1] == ("update", 4)

    calls = trainer.actor_rollout_wg.calls
    names = [name for name, _, _ in calls]
    # stage 1 start (step 1): tower trainable, lr; stage 2 start (step 4); stage 3 start (step 6)
    assert names[:2] == ["cc_set_vision_trainable", "cc_set_lr"]
    stage2 = names.index("cc_set_lr", 2)
    assert names[stage2 - 1 : stage2 + 5] == [
        "cc_set_vision_trainable",
        "cc_set_lr",
        "set_loss_fn",
        "cc_set_max_grad_norm",
        "cc_reset_optimizer",
        "cc_refresh_reference",
    ]
    assert calls[stage2 - 1][1] == (False,) and calls[stage2][1] == (3.0e-7,)
    loss_fn = calls[stage2 + 1][1][0]
    assert loss_fn.keywords["config"].kl_loss_coef == 0.05 and loss_fn.keywords["config"].clip_ratio_high == 0.15
    assert calls[stage2 + 4][1][0].endswith("curriculum/reference_text_reasoning.pt")

    # stage 1 end (step 3): resumable checkpoint (verl saves at 2, 4, 6, 7 only) then HF export
    hf_save = names.index("cc_save_hf_model")
    assert names[hf_save - 1] == "save_checkpoint" and calls[hf_save][1][1] == 3
    assert (tmp_path / "ckpt" / "global_step_3" / "data.pt").exists()
    # stage 2 end (step 5): validation after that step's weight sync, metrics logged at step 5
    assert events[events.index(("validate", 5)) - 1] == ("update_weights", 5)
    logged = dict(RecordingTracking.logged)
    assert logged[5]["val-core/perception/reward/mean@1"] == 0.25
    assert [logged[step]["curriculum/stage"] for step in range(1, 8)] == [0, 0, 0, 1, 1, 2, 2]
    assert logged[4]["curriculum/vision_trainable"] == 0.0 and logged[6]["curriculum/vision_trainable"] == 1.0
    assert logged[5]["curriculum/kl_coef"] == 0.05
    # the reward's extra info, per step (verl's v1 trainer logs it only for validation)
    assert logged[1]["reward/accuracy"] == 1.0 and logged[1]["reward/accuracy/perception"] == 0.5
    assert logged[4]["reward/accuracy"] == 0.0 and "reward/accuracy/perception" not in logged[4]
    assert driver.calls[1:3] == [("step_begin", 1), ("step_end", 1, True)]
    # the driver's config copy follows what the workers were told
    assert trainer.config.actor_rollout_ref.actor.kl_loss_coef == 0.05
    assert trainer.config.actor_rollout_ref.actor.optim.clip_grad == 0.5


def test_resume_from_data_pt_continues_the_same_rows(
    verl_config: Any, stage_files: dict, tmp_path: Path, tiny_processor
):
    config = _config(verl_config, stage_files, tmp_path)
    first, _ = _run(config, tiny_processor)
    assert (tmp_path / "ckpt" / "global_step_4" / "data.pt").exists()

    resumed_config = _config(
        verl_config,
        stage_files,
        tmp_path,
        "trainer.resume_mode=resume_path",
        f"trainer.resume_from_path={tmp_path / 'ckpt' / 'global_step_4'}",
    )
    second, _ = _run(resumed_config, tiny_processor)
    assert sorted(second.rollout_ids) == [5, 6, 7]
    assert {step: second.rollout_ids[step] for step in (5, 6, 7)} == {s: first.rollout_ids[s] for s in (5, 6, 7)}
    # the driver re-applied stage 2's state (it started at step 4) before step 5, without one-shot actions
    assert second.stage_driver.calls[0] == ("train_begin", 5)
    names = second.actor_rollout_wg.names()
    assert names[0] == "load_checkpoint"
    assert names[1:6] == [
        "cc_set_vision_trainable",
        "cc_set_lr",
        "set_loss_fn",
        "cc_set_max_grad_norm",
        "cc_load_reference",
    ]
    assert "cc_reset_optimizer" not in names


def test_freeze_vision_tower_flag_is_checked_at_plan_time(verl_config: Any, stage_files: dict, tmp_path: Path):
    config = _config(
        verl_config,
        stage_files,
        tmp_path,
        "actor_rollout_ref.actor.freeze_vision_tower=true",
        "actor_rollout_ref.actor.strategy=fsdp",
    )
    with pytest.raises(ValueError, match=r"freeze_vision_tower=true: vision_tower: not supported.*use_orig_params"):
        CapCurriculumTrainer(config)


def test_freeze_vision_tower_flag_is_honoured(verl_config: Any, stage_files: dict, tmp_path: Path, tiny_processor):
    config = _config(verl_config, stage_files, tmp_path, "actor_rollout_ref.actor.freeze_vision_tower=true")
    trainer = WorkerlessTrainer(config)
    events: list[tuple[Any, ...]] = []
    trainer.attach(events, tiny_processor)
    trainer._load_checkpoint()
    trainer.on_init_end()
    # verl's sync trainer pushes the weights first; the freeze is a cheap flag on the workers
    assert events == [("update_weights", 0), ("worker", "cc_set_vision_trainable")]
    assert trainer.actor_rollout_wg.calls[0][:2] == ("cc_set_vision_trainable", (False,))


def test_worker_methods_bind_through_verls_colocated_worker_class() -> None:
    """verl wraps the role's class in ``create_colocated_worker_cls`` (no Ray needed to build it) and binds every
    ``@register`` method as ``<role>_<method>``; ``RayWorkerGroup.spawn`` then strips the prefix for the group."""
    import ray
    from verl.single_controller.ray import RayClassWithInitArgs, create_colocated_worker_cls

    remote = ray.remote(CapCurriculumActorRolloutRefWorker)
    colocated = create_colocated_worker_cls(
        {"actor_rollout_ref": RayClassWithInitArgs(cls=remote, config=None, role="actor_rollout_ref")}
    )
    bound = set(dir(colocated.cls.__ray_actor_class__))
    ours = {name for name in RecordingWorkerGroup().registered if name.startswith("cc_")}
    assert ours == {
        "cc_set_vision_trainable",
        "cc_set_lr",
        "cc_set_max_grad_norm",
        "cc_reset_optimizer",
        "cc_refresh_reference",
        "cc_load_reference",
        "cc_save_hf_model",
    }
    assert {f"actor_rollout_ref_{name}" for name in [*ours, "set_loss_fn", "update_actor"]} <= bound


def test_reward_extra_metrics_average_each_key_over_the_samples_that_have_it() -> None:
    fields = [
        {"reward_extra_info": {"accuracy": 1.0, "accuracy/perception": 1.0, "format": 1, "pred": "A"}},
        {"reward_extra_info": {"accuracy": 0.0, "accuracy/text_reasoning": 0.0, "format": 0, "ok": True}},
        {"num_turns": 2},
        None,
    ]
    assert reward_extra_metrics(fields) == {
        "reward/accuracy": 0.5,
        "reward/accuracy/perception": 1.0,
        "reward/accuracy/text_reasoning": 0.0,
        "reward/format": 0.5,
    }
