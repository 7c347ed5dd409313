"""``CurriculumRayPPOTrainer``: EasyR1's ``RayPPOTrainer`` driving the curriculum's stage controller. ``fit`` has no
hook, so we override what it calls (read at b44b311).

* ``_make_batch_data``: the step is known and nothing of it has run. At a stage boundary the controller finishes the
  previous step (stage-end model directory, validation) and begins this one (knobs, optimizer reset, reference
  refresh), so no boundary operation falls between an update and EasyR1's checkpoint save.
* ``_load_checkpoint`` / ``_save_checkpoint``: verified resume and sealed saves (:mod:`vlm_capcurriculum.checkpoints`).
* ``logger`` (assigned inside ``fit``): per-stage copies of the reward metrics, and each step's line of the progress
  files (:class:`.layout.RunProgress`) before EasyR1 saves the step's checkpoint, or else when it logs the step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verl.trainer.ray_trainer import RayPPOTrainer
from verl.utils.checkpoint import find_latest_ckpt

from vlm_capcurriculum.checkpoints import checked_resume, seal, unseal
from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import CurriculumSampler, Plan, StageController

from .engine import EasyR1Engine
from .layout import RunProgress, StageLayout
from .records import INDEX_KEY, SAMPLE_ID_KEY

#: Reward metrics copied per stage (EasyR1 logs the reward function's keys as ``reward/<key>``).
STAGE_REWARD_KEYS = ("overall", "accuracy", "format")


class DataOutOfStepError(RuntimeError):
    """A step's batch does not hold the plan's samples of that step."""


class StageMetricsLogger:
    """EasyR1's ``Tracker`` plus per-stage copies of the step's reward means; ``on_log`` sees every log call."""

    def __init__(self, tracker: Any, plan: Plan, on_log: Any) -> None:
        self._tracker = tracker
        self._plan = plan
        self._on_log = on_log

    def log(self, data: dict[str, Any], step: int) -> None:
        if 1 <= step <= self._plan.total_steps:
            stage = self._plan.stage_at(step)
            for key in STAGE_REWARD_KEYS:
                value = data.get(f"reward/{key}")
                if value is not None:
                    data = {**data, f"curriculum/reward/{stage.name}/{key}": value}
        self._tracker.log(data=data, step=step)
        self._on_log(data, step)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tracker, name)


class CurriculumRayPPOTrainer(RayPPOTrainer):  # type: ignore[misc, valid-type]
    """EasyR1's trainer whose steps follow a curriculum ``plan`` (the one extra keyword argument); ``reward_fn`` is a
    :class:`.reward.CurriculumRewardManager` actor."""

    def __init__(self, *args: Any, plan: Plan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plan = plan  # config.apply_plan set trainer.max_steps, data.train_dataloader the loader
        self.curriculum_engine = EasyR1Engine(self)
        self.controller: StageController | None = None
        self._open_step: int | None = None
        self._curriculum_logger: StageMetricsLogger | None = None
        self.progress = RunProgress(StageLayout(self.config.trainer.save_checkpoint_path), plan)
        # the step in progress: its sample ids and EasyR1's metrics dict for it (filled as the step runs)
        self._pending_step: tuple[int, list[str], dict[str, Any]] | None = None

    # EasyR1's fit() assigns `self.logger = Tracker(...)`; we keep the Tracker behind a per-stage wrapper.
    @property
    def logger(self) -> StageMetricsLogger | None:
        return self._curriculum_logger

    @logger.setter
    def logger(self, tracker: Any) -> None:
        self._curriculum_logger = StageMetricsLogger(tracker, self.plan, on_log=self._record_log)

    def _record_step(self) -> None:
        """The open step's line of the steps file, once its reward and update are known: before EasyR1 saves the
        step's checkpoint (so a kill between its save and its log loses no line) or else when EasyR1 logs it."""
        if self._pending_step is not None:
            step, sample_ids, metrics = self._pending_step
            self._pending_step = None
            self.progress.record_step(step, sample_ids, metrics)

    def _record_log(self, data: dict[str, Any], step: int) -> None:
        """A training step's metrics (they hold the step's reward) or a validation's (``val/`` keys)."""
        if self._pending_step is not None and self._pending_step[0] == step and "reward/overall" in data:
            self._record_step()
        elif any(key.startswith("val/") for key in data):
            self.progress.record_validation(step, data)

    def _save_checkpoint(self) -> None:
        """EasyR1's save (``global_step_N/{actor,dataloader.pt}``, then its tracker), sealed with a manifest written
        last (:mod:`vlm_capcurriculum.checkpoints`)."""
        self._record_step()
        folder = Path(self.config.trainer.save_checkpoint_path) / f"global_step_{self.global_step}"
        if folder.is_dir():
            unseal(folder)
        super()._save_checkpoint()
        seal(folder)

    def _load_checkpoint(self) -> None:
        """EasyR1's load from a verified checkpoint (a damaged newest one falls back to the newest complete one), then
        the sampler, controller, progress files and engine at the restored step."""
        config = self.config.trainer
        saved = config.load_checkpoint_path, config.find_last_checkpoint
        if config.load_checkpoint_path is not None:
            checked_resume(Path(config.load_checkpoint_path).parent, config.load_checkpoint_path, explicit=True)
        elif config.find_last_checkpoint:
            latest, _ = find_latest_ckpt(config.save_checkpoint_path)
            chosen = checked_resume(config.save_checkpoint_path, latest)
            if chosen != latest:  # for this load only
                config.load_checkpoint_path, config.find_last_checkpoint = chosen, chosen is not None
        try:
            super()._load_checkpoint()
        finally:
            config.load_checkpoint_path, config.find_last_checkpoint = saved
        completed = self.global_step
        if completed > self.plan.total_steps:
            raise ConfigError(
                f"the checkpoint holds {completed} steps but the plan has {self.plan.total_steps}: it belongs to "
                "another run (trainer.save_checkpoint_path) or the data changed"
            )
        # Equal to what dataloader.pt restores (checked on every batch); decisive when the checkpoint lacks it.
        position = CurriculumSampler(self.plan, completed_steps=completed).state_dict()
        self.train_dataloader.sampler.load_state_dict(position)
        self.controller = StageController(self.plan, self.curriculum_engine, completed_steps=completed)
        self.progress.resume_at(completed)
        for line in self.curriculum_engine.restore_after_resume(completed):
            print(f"[curriculum] resume at step {completed}: {line}")

    def _make_batch_data(self, metrics: dict[str, Any]) -> Any:
        assert self.controller is not None  # RayPPOTrainer.fit calls _load_checkpoint before the loop
        step = self.global_step
        stage = self.plan.stage_at(step)
        transition = self.controller.current_stage is None or step == stage.start_step
        group = self.actor_rollout_ref_wg
        if transition:
            group.release_rollout_engine()
        if self._open_step is not None:
            self.controller.after_step(self._open_step)
        self.controller.before_step(step)
        self._open_step = step
        if transition:
            group.prepare_rollout_engine()
            print(f"[curriculum] step {step}: stage {stage.position + 1}/{len(self.plan.stages)} {stage.name!r}")
        metrics.update(
            {
                "curriculum/stage": stage.position,
                "curriculum/stage_step": step - stage.start_step + 1,
                **self.curriculum_engine.state_metrics(),
            }
        )
        batch = super()._make_batch_data(metrics)
        self._pending_step = (step, self._check_batch(batch, step), metrics)
        return batch

    def _check_batch(self, batch: Any, step: int) -> list[str]:
        """The batch must hold the plan's samples of ``step``; returns their sample ids (one per prompt)."""
        repeat = self.config.worker.rollout.n
        got = [int(index) for index in batch.non_tensor_batch[INDEX_KEY][::repeat]]
        expected = list(self.plan.batch(step))
        if got != expected:
            raise DataOutOfStepError(
                f"step {step} received samples {got[:8]}... but the plan trains {expected[:8]}...: the data "
                "loader is out of step with the plan (a dataloader.pt of another run?)"
            )
        return [str(sample_id) for sample_id in batch.non_tensor_batch[SAMPLE_ID_KEY][::repeat]]

    def fit(self) -> None:
        super().fit()
        if self._open_step is not None and self.controller is not None:
            step, self._open_step = self._open_step, None
            self.controller.after_step(step)  # the last stage's end actions (EasyR1 validated already)
            self.progress.write_summary()  # now with the last stage's model folder
