"""The ``capcurriculum`` trainer mode on CPU, driven by the REAL stage controller over the real plan of the sample
recipe (``recipes/config.yaml data=samples backend=verl``, prepared by the launcher): verl's real v1 trainer
(constructor, dataloader over the launcher's parquet files, ``fit`` loop, checkpoint save/resume of ``data.pt``)
built without workers, as in verl's ``tests/trainer/ppo/v1/test_trainer_base_on_cpu.py``. Only what needs GPUs or
Ray is replaced: the actor worker group (a recorder that accepts only methods the real worker registers), the
rollout weight sync, prompt submission to the agent loop, the PPO update of one step, and TransferQueue reads.

The sample recipe with one epoch per stage: batch 8, stages perception (steps 1-4), text_reasoning (5-8),
visual_reasoning (9-12); every stage action on (reset_optimizer and refresh_reference at stage starts,
save_checkpoint and validate at stage ends); verl saves its own checkpoints every 3 steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

import pytest

pytest.importorskip("verl")

import verl.trainer.ppo.v1.trainer_base as trainer_base
from omegaconf import open_dict
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer
from verl.trainer.ppo.v1.trainer_base import get_trainer_cls
from verl_doubles import RecordingCheckpointManager, RecordingWorkerGroup

import vlm_capcurriculum.integrations.verl.trainer as trainer_module
from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.integrations.verl.engine import VerlEngine, reference_tag_to_restore
from vlm_capcurriculum.integrations.verl.support import UnsupportedOverrideError
from vlm_capcurriculum.integrations.verl.trainer import (
    CapCurriculumTrainer,
    reward_extra_metrics,
)
from vlm_capcurriculum.integrations.verl.worker import CapCurriculumActorRolloutRefWorker

VERL_CALLS = {"save_checkpoint", "load_checkpoint"}
STAGE_STEPS = {1: range(1, 5), 2: range(5, 9), 3: range(9, 13)}
#: The reward's score per capability in the TransferQueue stand-in (every sample of a capability scores the same).
SCORES = {"perception": 0.75, "text_reasoning": 0.5, "visual_reasoning": 0.25}


class WorkerlessTrainer(CapCurriculumTrainer):
    """The real trainer minus GPU/Ray work: prompts are recorded instead of sent to rollout, one step's PPO
    pipeline keeps verl's hook order (``on_sample_begin``, sample, ``on_sample_end``, then the training stages) with
    the sample and the training stages recorded as events, and TransferQueue reads come from a stand-in."""

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
        return {"val-core/visual_reasoning/acc/mean@1": 0.25}


class RecordingTracking:
    """Stands where verl's ``Tracking`` logger would be."""

    logged: ClassVar[list[tuple[int, dict]]] = []

    def __init__(self, **kwargs: Any) -> None:
        RecordingTracking.logged = []

    def log(self, data: dict, step: int) -> None:
        RecordingTracking.logged.append((step, dict(data)))


class _TransferQueue:
    """Stands where TransferQueue would be: each sample's stored reward extra info, with our reward's keys."""

    @staticmethod
    def kv_clear(keys: list, partition_id: str) -> None:
        return None

    @staticmethod
    def kv_batch_get(keys: list, partition_id: str, select_fields: list) -> dict:
        assert select_fields == ["extra_fields"]
        fields = []
        for key in keys:  # sample ids as keys (see WorkerlessTrainer._step_once)
            score = SCORES[key.rsplit("-", 1)[0]]
            info = {"score": score, "acc": 1.0, "overall": score, "accuracy": 1.0, "format": 1.0, "pred": "A"}
            fields.append({"reward_extra_info": info, "num_turns": 2})
        return {"extra_fields": fields}


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


def _between(events: list, start: tuple, end: tuple) -> list:
    return events[events.index(start) : events.index(end) + 1]


def _worker_calls(events: list) -> list[str]:
    """The curriculum's calls on the worker group (not verl's own save_checkpoint/load_checkpoint)."""
    return [event[1] for event in events if event[0] == "worker" and event[1] not in VERL_CALLS]


def test_trainer_mode_is_registered_and_takes_verls_sync_paths(sample_run: Any) -> None:
    run = sample_run()
    assert get_trainer_cls("capcurriculum") is CapCurriculumTrainer
    trainer = CapCurriculumTrainer(run.config)
    assert trainer.selected_trainer_mode == "capcurriculum"
    assert trainer.trainer_mode == "sync"  # verl's base branches on this name
    assert type(trainer.replay_buffer) is ReplayBuffer
    assert trainer.parameter_sync_step == 1
    # the engine over the launcher's plan (the controller comes at the first step)
    assert isinstance(trainer.curriculum_engine, VerlEngine)
    assert trainer.curriculum_plan.indices == run.plan.indices


def test_worker_class_replaces_verls_actor_worker(sample_run: Any) -> None:
    from verl.trainer.ppo.utils import Role

    trainer = CapCurriculumTrainer(sample_run().config)
    trainer._init_resource_pool_mgr()
    # use_kl_loss=true with the hybrid engine: verl maps the fused actor+rollout+ref role
    worker = trainer.role_worker_mapping[Role.ActorRolloutRef]
    assert worker.__ray_actor_class__ is CapCurriculumActorRolloutRefWorker


def test_missing_curriculum_and_async_layout_are_config_errors(sample_run: Any) -> None:
    config = sample_run().config
    with open_dict(config):
        config.curriculum.stages = []
    with pytest.raises(ConfigError, match=r"the verl config has no curriculum"):
        CapCurriculumTrainer(config)
    config = sample_run().config
    config.actor_rollout_ref.hybrid_engine = False
    with pytest.raises(ConfigError, match="hybrid_engine"):
        CapCurriculumTrainer(config)


def test_plan_is_checked_against_the_verl_config_before_any_worker(sample_run: Any) -> None:
    config = sample_run().config
    config.actor_rollout_ref.actor.use_kl_loss = False  # no reference model: refresh_reference cannot work
    with pytest.raises(UnsupportedOverrideError, match=r"stage 'text_reasoning' \(steps 5-8\): refresh_reference"):
        CapCurriculumTrainer(config)
    config = sample_run().config
    config.data.train_batch_size = 16
    with pytest.raises(ConfigError, match=r"data.train_batch_size=16 but curriculum.batch_size=8"):
        CapCurriculumTrainer(config)


def test_fit_drives_the_real_stage_controller_in_verls_hook_order(sample_run: Any, tiny_processor: Any) -> None:
    run = sample_run()
    trainer, events = _run(run.config, tiny_processor)
    ids = [record.id for record in run.data.records]

    # the dataloader served the plan's exact order, one batch per step, and the plan's stages
    assert trainer.rollout_ids == {step: [ids[i] for i in run.plan.batch(step)] for step in range(1, 13)}
    for stage, steps in STAGE_STEPS.items():
        capability = run.plan.stages[stage - 1].capability
        assert all(sample.startswith(capability) for step in steps for sample in trainer.rollout_ids[step])
    assert trainer.curriculum_controller.finished

    # step 1: the first stage's state (tower trainable); its start actions are skipped (fresh optimizer/reference)
    assert _worker_calls(_between(events, ("rollout", 1), ("update", 1))) == ["curriculum_set_vision_trainable"]
    # a stage starts after the step's rollout, with the replicas asleep, before its update; state, then actions
    step5 = _between(events, ("rollout", 5), ("update", 5))
    assert step5[:3] == [("rollout", 5), ("sample", 5), ("sleep_replicas",)]
    assert _worker_calls(step5) == [
        "curriculum_set_vision_trainable",
        "curriculum_reset_optimizer",
        "curriculum_refresh_reference",
    ]
    assert _worker_calls(_between(events, ("rollout", 9), ("update", 9))) == _worker_calls(step5)
    # nothing inside a stage
    assert _worker_calls(_between(events, ("rollout", 6), ("update", 8))) == []

    calls = trainer.actor_rollout_wg.calls
    by_name: dict[str, list] = {}
    for name, args, _ in calls:
        by_name.setdefault(name, []).append(args)
    assert by_name["curriculum_set_vision_trainable"] == [(True,), (False,), (True,)]  # the paper's per-stage tower
    assert [Path(args[0]).name for args in by_name["curriculum_refresh_reference"]] == [
        "reference_02_text_reasoning.pt",
        "reference_03_visual_reasoning.pt",
    ]
    # stage ends (steps 4, 8, 12): a resumable checkpoint where verl would not save one (it saves at 3, 6, 9, 12),
    # then the HF export; validation after that step's weight sync
    assert [(Path(args[0]).name, args[1]) for args in by_name["curriculum_save_hf_model"]] == [
        ("01_perception", 4),
        ("02_text_reasoning", 8),
        ("03_visual_reasoning", 12),
    ]
    checkpoints = sorted(int(p.name.split("_")[-1]) for p in (run.output_dir / "checkpoints").glob("global_step_*"))
    assert checkpoints == [3, 4, 6, 8, 9, 12]
    for step in (4, 8, 12):
        assert events[events.index(("validate", step)) - 1] == ("update_weights", step)
    assert [event for event in events if event[0] == "validate"] == [("validate", 4), ("validate", 8), ("validate", 12)]

    logged = dict(RecordingTracking.logged)
    assert [logged[step]["curriculum/stage"] for step in range(1, 13)] == [1] * 4 + [2] * 4 + [3] * 4
    assert [logged[step]["curriculum/stage_step"] for step in range(1, 13)] == [1, 2, 3, 4] * 3
    assert [logged[step]["curriculum/vision_trainable"] for step in (4, 5, 9)] == [1.0, 0.0, 1.0]
    assert logged[8]["val-core/visual_reasoning/acc/mean@1"] == 0.25
    # per-step reward extra info (verl's v1 trainer logs it only for validation) and per-stage reward curves
    assert logged[1]["reward/score"] == 0.75 and logged[5]["reward/score"] == 0.5
    assert "reward/pred" not in logged[1]  # strings are not averaged
    assert logged[6]["stage/text_reasoning/reward/score"] == 0.5
    assert logged[12]["stage/visual_reasoning/reward_mean/score"] == 0.25
    assert not any(key.startswith("stage/perception/") for key in logged[5])


def test_merged_baseline_freezes_the_tower_once(sample_run: Any, tiny_processor: Any) -> None:
    run = sample_run("curriculum=merged")
    assert [(stage.name, stage.steps) for stage in run.plan.stages] == [("merged", 12)]
    trainer, events = _run(run.config, tiny_processor)
    names = [name for name in trainer.actor_rollout_wg.names() if name.startswith("curriculum_")]
    assert names == [
        "curriculum_set_vision_trainable",
        "curriculum_save_hf_model",
    ]  # frozen at step 1; stage-end export
    assert trainer.actor_rollout_wg.calls[0][1] == (False,)
    assert [event for event in events if event[0] == "validate"] == [("validate", 12)]


@pytest.mark.parametrize(
    ("resume_at", "restored", "first_calls", "trainable"),
    [
        # inside stage 2 (verl's own checkpoint at step 6): stage 2's reference snapshot, stage 2's frozen tower
        (6, "reference_02_text_reasoning.pt", ["curriculum_load_reference", "curriculum_set_vision_trainable"], False),
        # at the end of stage 2 (its stage-end checkpoint): stage 3 starts normally, nothing to restore
        (
            8,
            None,
            ["curriculum_set_vision_trainable", "curriculum_reset_optimizer", "curriculum_refresh_reference"],
            True,
        ),
    ],
)
def test_resume_reapplies_the_stage_and_continues_the_same_rows(
    sample_run: Any, tiny_processor: Any, resume_at: int, restored: str | None, first_calls: list[str], trainable: bool
) -> None:
    first, _ = _run(sample_run().config, tiny_processor)
    checkpoint = Path(first.config.trainer.default_local_dir) / f"global_step_{resume_at}"
    assert (checkpoint / "data.pt").exists()

    config = sample_run().config  # the same recipe again: the launcher rewrites identical files
    config.trainer.resume_mode = "resume_path"
    config.trainer.resume_from_path = str(checkpoint)
    second, events = _run(config, tiny_processor)
    assert sorted(second.rollout_ids) == list(range(resume_at + 1, 13))
    assert {s: second.rollout_ids[s] for s in second.rollout_ids} == {
        s: first.rollout_ids[s] for s in second.rollout_ids
    }
    assert second.curriculum_controller.finished

    names = second.actor_rollout_wg.names()
    assert names[0] == "load_checkpoint"
    step = resume_at + 1
    assert _worker_calls(_between(events, ("rollout", step), ("update", step))) == first_calls
    if restored is not None:
        assert Path(second.actor_rollout_wg.calls[1][1][0]).name == restored
    assert second.actor_rollout_wg.calls[names.index("curriculum_set_vision_trainable")][1] == (trainable,)
    # one-shot actions of steps before the checkpoint are not replayed: only stage 3's start resets and refreshes
    assert names.count("curriculum_reset_optimizer") == names.count("curriculum_refresh_reference") == 1
    validations = [event for event in events if event[0] == "validate"]
    assert validations == [("validate", step) for step in (8, 12) if step > resume_at]


def test_reference_to_restore_follows_the_last_refresh(sample_run: Any) -> None:
    plan = sample_run().plan
    assert [reference_tag_to_restore(plan, done) for done in range(13)] == (
        [None] * 5 + ["02_text_reasoning"] * 3 + [None] + ["03_visual_reasoning"] * 3 + [None]
    )


def test_freeze_vision_tower_flag_is_checked_at_plan_time(sample_run: Any) -> None:
    config = sample_run().config
    config.actor_rollout_ref.actor.freeze_vision_tower = True
    config.actor_rollout_ref.actor.strategy = "fsdp"
    with pytest.raises(ValueError, match=r"freeze_vision_tower=true: vision_tower: not supported.*use_orig_params"):
        CapCurriculumTrainer(config)


def test_freeze_vision_tower_flag_is_honoured(sample_run: Any, tiny_processor: Any) -> None:
    config = sample_run().config
    config.actor_rollout_ref.actor.freeze_vision_tower = True
    trainer = WorkerlessTrainer(config)
    events: list[tuple[Any, ...]] = []
    trainer.attach(events, tiny_processor)
    trainer._load_checkpoint()
    trainer.on_init_end()
    # verl's sync trainer pushes the weights first; the freeze is a cheap flag on the workers
    assert events == [("update_weights", 0), ("worker", "curriculum_set_vision_trainable")]
    assert trainer.actor_rollout_wg.calls[0][:2] == ("curriculum_set_vision_trainable", (False,))


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
    ours = {name for name in RecordingWorkerGroup().registered if name.startswith("curriculum_")}
    assert ours == {
        "curriculum_set_vision_trainable",
        "curriculum_set_lr",
        "curriculum_set_lr_warmup",
        "curriculum_set_max_grad_norm",
        "curriculum_reset_optimizer",
        "curriculum_refresh_reference",
        "curriculum_load_reference",
        "curriculum_save_hf_model",
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
