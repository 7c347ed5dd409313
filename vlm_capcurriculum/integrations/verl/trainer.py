"""The ``capcurriculum`` trainer mode: verl 0.9.1's synchronous v1 trainer driving a curriculum stage driver.

Selected with ``trainer.v1.trainer_mode=capcurriculum`` (``TaskRunnerV1.run`` calls ``get_trainer_cls`` on it).
verl's ``PPOTrainer.fit`` (``verl/trainer/ppo/v1/trainer_base.py``) runs, per global step ``N`` (1-based)::

    on_step_begin()
    step(metrics, timing_raw)
      prepare_step()                submit the step's prompts (train_batch_size rows of the dataloader) to rollout
      _step_once()
        on_sample_begin()
        replay_buffer.sample()      wait for the rollouts and rewards
        on_sample_end()             PPOTrainerSync: rollout replicas sleep (GPU memory free)
                                    -> stage_driver.on_step_begin(N)        stage start: apply overrides
        old log-probs, ref log-probs, advantages, actor update
                                    -> metrics += reward/<key> (the reward's extra info, per step)
                                    -> stage_driver.on_step_end(N, metrics) stage end: checkpoint, request val
    _save_checkpoint()              if trainer.save_freq says so: global_step_N/{actor,data.pt}
    on_step_end()                   PPOTrainerSync: weights -> rollout replicas; then the requested validation
    validation (trainer.test_freq), _compute_metrics, logger.log(metrics, step=N)

``on_train_begin`` runs once before the loop, with ``global_steps`` already at the first step to run (``K + 1``
after a resume from ``global_step_K``); the driver's ``on_train_begin`` is deferred to that first step's
``on_sample_end`` so that it can re-apply the current stage's state with the replicas asleep.

Why stage starts are applied after the rollout: every override verl can apply (capabilities.py) acts on training
(loss, optimizer, vision-tower gradients, reference model), and all of that happens after ``on_sample_end``; the
rollout of step ``N`` uses the policy after step ``N - 1`` either way. Generation settings (temperature, n) cannot
change mid-run in verl 0.9.1.

The private verl surface this module relies on is listed in ``docs/integrations/verl.md``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

import ray
import transfer_queue as tq
from omegaconf import DictConfig
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.debug import marked_timer
from verl.utils.import_utils import load_extern_object
from verl.workers.engine_workers import ActorRolloutRefWorker

from .checkpointing import load_checked, save_sealed
from .engine import VerlEngine
from .planning import CurriculumConfigError
from .plugin import TRAINER_MODE
from .worker import CapCurriculumActorRolloutRefWorker

#: verl's base trainer branches on ``trainer_mode == "sync"`` (replay buffer class, gen_batch_size, TransferQueue
#: checkpointing, in-flight prompt re-issue); ours must take every synchronous branch.
BEHAVES_AS = "sync"


@runtime_checkable
class StageDriver(Protocol):
    """What the trainer calls; by default :class:`~.driver.CurriculumStageDriver`, the core's stage controller
    (see ``build_stage_driver``)."""

    def on_train_begin(self, global_step: int) -> None:
        """Once, at the first step to run (``global_step``, after its rollout, before ``on_step_begin``); after a
        resume, re-apply the current stage's state."""

    def on_step_begin(self, global_step: int) -> None:
        """Before the training work of ``global_step`` (after its rollout): apply a new stage's overrides when it
        starts here."""

    def on_step_end(self, global_step: int, metrics: Mapping[str, Any]) -> Mapping[str, float]:
        """After the actor update of ``global_step`` (``metrics`` holds the step's metrics so far); stage-end
        actions; returns metrics to log (e.g. ``curriculum/stage``)."""


def reward_extra_metrics(extra_fields: Iterable[Any]) -> dict[str, float]:
    """``reward/<key>`` = mean of each numeric key the reward returned, over the samples that returned it.

    verl 0.9.1's v1 trainer logs reward extra info only for validation; EasyR1 logs it every step and the paper's
    per-capability accuracies come from it (a key such as ``accuracy/perception`` appears only on that capability's
    samples, hence the mean over the samples that have it)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for field in extra_fields:
        info = field.get("reward_extra_info") if isinstance(field, Mapping) else None
        if not isinstance(info, Mapping):
            continue
        for key, value in info.items():
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                continue
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {f"reward/{key}": sums[key] / counts[key] for key in sorted(sums)}


def content_order(data: Any) -> list[int]:
    """Indices that sort a step's samples by record id (``extra_info.id``), then by prompt + response tokens;
    samples equal in both are identical (a GRPO group's duplicate responses), so their order cannot matter."""
    ids = data["extra_info"]
    ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
    tokens = [row.tolist() for row in data["input_ids"].unbind(0)]

    def key(index: int) -> tuple[str, list[int]]:
        extra = ids[index]
        return str(extra.get("id", "") if isinstance(extra, Mapping) else extra), tokens[index]

    return sorted(range(len(tokens)), key=key)


def build_stage_driver(config: DictConfig, engine: VerlEngine) -> StageDriver:
    """Load ``curriculum.driver.{path,name}`` (a ``pkg://`` or file path, as verl loads custom classes) and call it
    as ``factory(curriculum_config, engine)``. The factory checks the plan against ``engine.check_overrides``."""
    curriculum = config.get("curriculum")
    driver_ref = curriculum.get("driver") if curriculum is not None else None
    if driver_ref is None or not driver_ref.get("path") or not driver_ref.get("name"):
        raise CurriculumConfigError(
            f"trainer.v1.trainer_mode={TRAINER_MODE} needs curriculum.driver.path and curriculum.driver.name "
            "(the stage driver factory)"
        )
    factory = load_extern_object(driver_ref.path, driver_ref.name)
    driver = factory(curriculum, engine)
    if not isinstance(driver, StageDriver):
        raise CurriculumConfigError(
            f"{driver_ref.path}:{driver_ref.name} returned {type(driver).__name__}, which lacks "
            "on_train_begin/on_step_begin/on_step_end"
        )
    return driver


@register_trainer(TRAINER_MODE)
class CapCurriculumTrainer(PPOTrainerSync):
    """Synchronous PPO/GRPO (colocated actor and rollout) with curriculum stages applied between steps."""

    def __init__(self, config: DictConfig) -> None:
        if not config.actor_rollout_ref.get("hybrid_engine", True):
            raise CurriculumConfigError(
                f"trainer mode {TRAINER_MODE} is synchronous and needs actor_rollout_ref.hybrid_engine=true"
            )
        super().__init__(config)
        self.curriculum_engine = VerlEngine(self)
        if config.actor_rollout_ref.actor.get("freeze_vision_tower", False):
            self.curriculum_engine.check_overrides(
                {"vision_tower": "frozen"}, where="actor_rollout_ref.actor.freeze_vision_tower=true"
            )
        # Plan-time: the driver factory checks every stage's overrides before any worker is spawned.
        self.stage_driver = build_stage_driver(config, self.curriculum_engine)

    # verl reads ``self.trainer_mode`` to choose its synchronous code paths; report "sync" to it and keep the
    # configured name (``capcurriculum``) for anyone who asks.
    @property
    def trainer_mode(self) -> str:
        return BEHAVES_AS

    @trainer_mode.setter
    def trainer_mode(self, value: str) -> None:
        self.selected_trainer_mode = value

    def _init_resource_pool_mgr(self) -> None:
        super()._init_resource_pool_mgr()
        for role in (Role.Actor, Role.ActorRollout, Role.ActorRolloutRef, Role.RefPolicy):
            remote_cls = self.role_worker_mapping.get(role)
            if remote_cls is not None and getattr(remote_cls, "__ray_actor_class__", None) is ActorRolloutRefWorker:
                self.role_worker_mapping[role] = ray.remote(CapCurriculumActorRolloutRefWorker)

    # Checkpoints sealed and verified (vlm_capcurriculum.checkpoints): a damaged newest one falls back.
    def _save_checkpoint(self) -> None:
        save_sealed(self, super()._save_checkpoint)

    def _load_checkpoint(self) -> None:
        load_checked(self, super()._load_checkpoint)

    def verl_saves_checkpoint_at(self, global_step: int) -> bool:
        """Whether ``fit`` saves a resumable checkpoint after ``step()`` of ``global_step``."""
        save_freq = self.config.trainer.save_freq
        return save_freq > 0 and (global_step >= self.total_training_steps or global_step % save_freq == 0)

    def verl_validates_at(self, global_step: int) -> bool:
        """Whether ``fit`` runs validation after ``on_step_end`` of ``global_step``."""
        test_freq = self.config.trainer.test_freq
        return test_freq > 0 and (global_step >= self.total_training_steps or global_step % test_freq == 0)

    # ------------------------------------------------------------------ hooks
    def on_init_end(self) -> None:
        super().on_init_end()  # PPOTrainerSync: push the (possibly resumed) weights to the rollout replicas
        # verl 0.9.1 declares actor.freeze_vision_tower but nothing reads it; this trainer mode honours it.
        if self.config.actor_rollout_ref.actor.get("freeze_vision_tower", False):
            self.curriculum_engine.set_vision_trainable(False)

    def on_train_begin(self) -> None:
        super().on_train_begin()
        self._driver_train_begin_pending = True

    def on_sample_end(self) -> None:
        super().on_sample_end()  # PPOTrainerSync: rollout replicas sleep
        with marked_timer("curriculum", self.timing_raw):
            if getattr(self, "_driver_train_begin_pending", False):
                self._driver_train_begin_pending = False
                self.stage_driver.on_train_begin(self.global_steps)
            self.stage_driver.on_step_begin(self.global_steps)

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        batch = super().step(metrics, timing_raw)
        metrics.update(self._reward_metrics(batch))
        with marked_timer("curriculum", timing_raw):
            driver_metrics = dict(self.stage_driver.on_step_end(self.global_steps, metrics))
        metrics.update(self.curriculum_engine.state_metrics())
        metrics.update(driver_metrics)
        return batch

    def _balance_batch(self, batch: Any, metrics: Any, *args: Any, **kwargs: Any) -> Any:
        """The step's samples in content order (record id, then prompt + response tokens) before verl balances
        them: TransferQueue hands them over in the order their rollouts finished, and everything after this point
        (GRPO group statistics, micro-batches, gradient accumulation, the step's means) sums in batch order, so a
        resumed run would otherwise drift from the uninterrupted one in the last bits."""
        if batch.size > 1:
            batch.reorder(content_order(tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id,
                                                        select_fields=["input_ids", "extra_info"])))  # fmt: skip
        return super()._balance_batch(batch, metrics, *args, **kwargs)

    def _reward_metrics(self, batch: Any) -> dict[str, float]:
        """Read the step's reward extra info from TransferQueue (as verl's ``_compute_metrics`` reads
        ``extra_fields``), before ``fit`` clears the batch."""
        keys = [key for key, tag in zip(batch.keys, batch.tags, strict=True) if not tag.get("is_padding", False)]
        if not keys:
            return {}
        data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
        fields = data["extra_fields"]
        return reward_extra_metrics(fields.tolist() if hasattr(fields, "tolist") else fields)

    def on_step_end(self) -> None:
        super().on_step_end()  # PPOTrainerSync: weights -> rollout replicas (validation needs them)
        engine = self.curriculum_engine
        if not engine.validation_requested:
            return
        engine.validation_requested = False
        if self.verl_validates_at(self.global_steps):
            return  # fit validates this step right after on_step_end
        with marked_timer("curriculum_validation", self.timing_raw):
            self.on_validate_begin()
            val_metrics = self._validate()
            self.on_validate_end()
        # fit merges _pending_sync_metrics into the step's metrics right after on_step_end
        self._pending_sync_metrics = {**(getattr(self, "_pending_sync_metrics", None) or {}), **val_metrics}
