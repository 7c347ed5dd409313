"""The ``capcurriculum`` trainer mode (``trainer.v1.trainer_mode=capcurriculum``): verl 0.9.1's synchronous v1
trainer driving the core's stage controller. Hook timeline, resume and the verl internals used:
``docs/integrations/verl.md`` ("The trainer mode").
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import ray
import transfer_queue as tq
from omegaconf import DictConfig, open_dict
from verl.trainer.ppo.utils import Role
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync
from verl.utils.checkpoint.checkpoint_manager import find_latest_ckpt_path
from verl.utils.debug import marked_timer
from verl.workers.engine_workers import ActorRolloutRefWorker

from vlm_capcurriculum.checkpoints import checked_resume, seal, unseal
from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import PlannedStage, StageController

from .engine import VerlEngine, reference_tag_to_restore
from .layout import RunLayout
from .planning import load_plan
from .plugin import TRAINER_MODE
from .support import ENGINE_NAME, check_plan
from .worker import CapCurriculumActorRolloutRefWorker


def reward_extra_metrics(extra_fields: Iterable[Any]) -> dict[str, float]:
    """``reward/<key>`` = mean of each numeric key the reward returned, over the samples that returned it (verl 0.9.1
    logs reward extra info only for validation; EasyR1 logs it every step, and the paper's per-capability accuracies
    come from it)."""
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


# verl 0.9.1 (``trainer_base.py``) saves the actor, ``data.pt``, then ``latest_checkpointed_iteration.txt``, and resumes
# from the directory that tracker names (``resume_mode=auto``) or ``trainer.resume_from_path``. We seal after its save
# and, when the tracker's choice does not verify, point ``resume_from_path`` at the newest complete checkpoint for the
# duration of its load (:mod:`vlm_capcurriculum.checkpoints`).
def save_sealed(trainer: Any, save: Callable[[], None]) -> None:
    """``save()`` (verl's ``_save_checkpoint``), then the manifest; an async save is left unsealed (its files
    are still being written), and such checkpoints are judged by verl's tracker alone."""
    folder = Path(trainer.config.trainer.default_local_dir) / f"global_step_{trainer.global_steps}"
    if folder.is_dir():
        unseal(folder)
    save()
    if not trainer.config.actor_rollout_ref.actor.get("checkpoint", {}).get("async_save", False):
        seal(folder)


def load_checked(trainer: Any, load: Callable[[], None]) -> None:
    """``load()`` (verl's ``_load_checkpoint``) from a verified checkpoint."""
    config = trainer.config.trainer
    root = os.path.join(os.getcwd(), config.default_local_dir)  # as verl resolves it (an absolute path stays)
    if config.resume_mode == "resume_path":
        checked_resume(Path(config.resume_from_path).parent, config.resume_from_path, explicit=True)
        return load()
    if config.resume_mode != "auto":
        return load()
    latest = find_latest_ckpt_path(root)
    chosen = checked_resume(root, latest)
    if chosen == latest:
        return load()
    saved = config.resume_mode, config.get("resume_from_path")
    with open_dict(config):
        config.resume_mode, config.resume_from_path = ("resume_path", chosen) if chosen else ("disable", None)
    try:
        load()
    finally:
        with open_dict(config):
            config.resume_mode, config.resume_from_path = saved


@register_trainer(TRAINER_MODE)
class CapCurriculumTrainer(PPOTrainerSync):
    """Synchronous PPO/GRPO (colocated actor and rollout) with curriculum stages applied between steps."""

    def __init__(self, config: DictConfig) -> None:
        if not config.actor_rollout_ref.get("hybrid_engine", True):
            raise ConfigError(
                f"trainer mode {TRAINER_MODE} is synchronous and needs actor_rollout_ref.hybrid_engine=true"
            )
        super().__init__(config)
        data, self.curriculum_plan = load_plan(config.curriculum)
        check_plan(self.curriculum_plan, config)  # before any worker is spawned
        output_dir = config.curriculum.get("output_dir")
        layout = RunLayout(output_dir, self.curriculum_plan, data) if output_dir else None
        self.curriculum_engine = VerlEngine(self, self.curriculum_plan, layout)
        self.curriculum_controller: StageController | None = None  # built at the first step this process runs
        self._stage_rewards: tuple[int, dict[str, list[float]]] | None = None  # (stage position, rewards so far)

    # verl's base trainer branches on ``trainer_mode == "sync"`` (replay buffer, gen_batch_size, TransferQueue
    # checkpointing, prompt re-issue): report "sync" and keep the configured name in ``selected_trainer_mode``.
    @property
    def trainer_mode(self) -> str:
        return "sync"

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

    # ------------------------------------------------------------------ hooks
    def on_init_end(self) -> None:
        super().on_init_end()  # PPOTrainerSync: push the (possibly resumed) weights to the rollout replicas
        # verl 0.9.1 declares actor.freeze_vision_tower but nothing reads it; this trainer mode honours it.
        if self.config.actor_rollout_ref.actor.get("freeze_vision_tower", False):
            self.curriculum_engine.set_vision_tower_trainable(False)

    def on_sample_end(self) -> None:
        super().on_sample_end()  # PPOTrainerSync: rollout replicas sleep
        with marked_timer("curriculum", self.timing_raw):
            if self.curriculum_controller is None:  # this process's first step: K + 1 after a resume from K
                self._start_curriculum(completed=self.global_steps - 1)
            self.curriculum_controller.before_step(self.global_steps)

    def _start_curriculum(self, completed: int) -> None:
        engine, plan = self.curriculum_engine, self.curriculum_plan
        if engine.layout is not None:
            engine.layout.steps.resume_at(completed)
        self.curriculum_controller = StageController(plan, engine, completed_steps=completed, engine_name=ENGINE_NAME)
        tag = reference_tag_to_restore(plan, completed)
        if tag is not None:
            engine.restore_reference(tag)

    def step(self, metrics: dict, timing_raw: dict) -> Any:
        batch = super().step(metrics, timing_raw)
        metrics.update(self._reward_metrics(batch))
        step, engine = self.global_steps, self.curriculum_engine
        stage = self.curriculum_plan.stage_at(step)
        with marked_timer("curriculum", timing_raw):
            self.curriculum_controller.after_step(step)  # stage end: the stage folder is written here
            if engine.layout is not None:
                engine.layout.log_step(step, metrics)
        metrics.update(engine.state_metrics())
        metrics["curriculum/stage"] = float(stage.position + 1)
        metrics["curriculum/stage_step"] = float(step - stage.start_step + 1)
        metrics.update(self._stage_reward_metrics(stage, metrics))
        return batch

    def _stage_reward_metrics(self, stage: PlannedStage, metrics: dict) -> dict[str, float]:
        """Per reward key ``reward/<k>`` of the step: ``stage/<stage>/reward/<k>`` (this step) and
        ``stage/<stage>/reward_mean/<k>`` (mean over the stage's steps run by this process so far)."""
        if self._stage_rewards is None or self._stage_rewards[0] != stage.position:
            self._stage_rewards = (stage.position, {})
        seen = self._stage_rewards[1]
        out: dict[str, float] = {}
        for name, value in list(metrics.items()):
            if not name.startswith("reward/") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            key = name[len("reward/") :]
            seen.setdefault(key, []).append(float(value))
            out[f"stage/{stage.name}/reward/{key}"] = float(value)
            out[f"stage/{stage.name}/reward_mean/{key}"] = sum(seen[key]) / len(seen[key])
        return out

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
        test_freq = self.config.trainer.test_freq
        if test_freq > 0 and (self.global_steps >= self.total_training_steps or self.global_steps % test_freq == 0):
            return  # fit validates this step right after on_step_end
        with marked_timer("curriculum_validation", self.timing_raw):
            self.on_validate_begin()
            val_metrics = self._validate()
            self.on_validate_end()
        # fit merges _pending_sync_metrics into the step's metrics right after on_step_end
        self._pending_sync_metrics = {**(getattr(self, "_pending_sync_metrics", None) or {}), **val_metrics}
