"""``CurriculumGRPOTrainer``: TRL's ``GRPOTrainer`` trained along a curriculum plan, stage transitions included.

It overrides private API of trl 1.16 / transformers 5.10 (``docs/integrations/trl.md`` says why): the sampler,
``_prepare_inputs`` (stage actions before a step's generation), ``_calculate_rewards`` (step statistics), optimizer
and scheduler creation, checkpoint save/load and ``train`` (curriculum state; a resume reproduces an uninterrupted run).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import gather_object
from datasets import Dataset
from torch.optim.lr_scheduler import LambdaLR
from transformers import GenerationConfig, PrinterCallback, ProgressCallback, Trainer, TrainerCallback
from transformers.integrations import TensorBoardCallback
from transformers.integrations.integration_utils import default_logdir
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOConfig, GRPOTrainer
from trl.models import unwrap_model_for_generation

from vlm_capcurriculum.checkpoints import (
    CheckpointError,
    newest_complete,
    require_complete,
    seal,
    step_directories,
    unseal,
    write_json_atomic,
)
from vlm_capcurriculum.curriculum import Plan, PlannedStage, StageController
from vlm_capcurriculum.curriculum.run_layout import SUMMARY_FILE, StepsLog, step_record, write_summary
from vlm_capcurriculum.curriculum.warmup import StageWarmup, warmup_steps
from vlm_capcurriculum.integrations.torch_ops import vision_tower

from .card import model_card
from .console import stage_banner, stage_end_line, step_line
from .dataset import prompt_text
from .engine import BaseValues, TRLEngine, load_weights_strict
from .history import stage_entry, step_metrics
from .rewards import ACCURACY, FORMAT, accuracy_reward, format_reward
from .sampler import CurriculumRepeatSampler, updates_per_step

logger = logging.getLogger(__name__)

STATE_FILE = "curriculum_state.json"
STATE_VERSION = 1


class CurriculumOrderError(RuntimeError):
    """A generation batch that is not the plan's batch for its step (the sampler and the trainer disagree)."""


class CurriculumStateError(RuntimeError):
    """A checkpoint without (or with a foreign) curriculum state."""


def last_complete_checkpoint(output_dir: str | os.PathLike[str]) -> Path | None:
    """The newest ``checkpoint-N`` whose manifest verifies (:mod:`vlm_capcurriculum.checkpoints`: a kill mid-save
    leaves none, a damaged file fails it); newer damaged ones are named in one warning line."""
    return newest_complete(step_directories(output_dir, rf"{PREFIX_CHECKPOINT_DIR}-(\d+)"))


class _CurriculumCallback(TrainerCallback):
    """Ends curriculum steps: after the last optimizer update of a step (before TRL logs and saves)."""

    def __init__(self, trainer: CurriculumGRPOTrainer) -> None:
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        if self.trainer.finish_optimizer_step(state.global_step) and args.save_strategy != "no":
            control.should_save = True  # a TRL checkpoint at every stage end: the latest safe resume point
        return control

    def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.trainer.write_summary()
        return control


class CurriculumGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` over the global index space of ``plan``: row ``i`` of ``train_dataset``
    (:func:`~.dataset.build_dataset`) is global index ``i``. ``args`` comes from :func:`~.config.build_settings`,
    which derives the batch layout, ``max_steps`` and the constant lr the checks below require.
    """

    def __init__(
        self,
        model: Any,
        *,
        plan: Plan,
        args: GRPOConfig,
        train_dataset: Dataset,
        processing_class: Any,
        val_dataset: Dataset | None = None,
        reward_kwargs: dict[str, Any] | None = None,
        lr_warmup_ratio: float = 0.0,
        val_batch_size: int = 16,
        val_generation_kwargs: dict[str, Any] | None = None,
        val_before_train: bool = False,
        run_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if len(train_dataset) != plan.dataset_size:
            raise ValueError(
                f"train_dataset has {len(train_dataset)} rows, the plan's global index space {plan.dataset_size}"
            )
        if args.lr_scheduler_type not in ("constant", "constant_with_warmup") or args.warmup_steps:
            raise ValueError(
                f"lr_scheduler_type {args.lr_scheduler_type!r}, warmup_steps {args.warmup_steps}: the curriculum "
                "trainer uses a constant lr with a per-stage warm-up (lr_warmup_ratio); set lr_scheduler_type="
                "'constant' and no warmup_steps"
            )
        # GRPOTrainer requires left padding ("The padding side must be set to 'left'"): it left-pads the prompt ids
        # itself but takes mm_token_type_ids from a processor call, and right padding shifts those against the ids
        # (Qwen3-VL's M-RoPE index then fails on batches of unequal prompt lengths).
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        tokenizer.padding_side = "left"
        super().__init__(
            model=model,
            reward_funcs=[accuracy_reward, format_reward],
            args=args,
            train_dataset=train_dataset,
            processing_class=processing_class,
            **kwargs,
        )
        self.plan = plan
        self.updates_per_step = updates_per_step(
            prompts_per_step=plan.batch_size,
            num_generations=self.num_generations,
            per_device_train_batch_size=args.per_device_train_batch_size,
            gradient_accumulation_steps=args.gradient_accumulation_steps,
            num_iterations=self.num_iterations,
            world_size=args.world_size,
        )
        if args.generation_batch_size != plan.batch_size * self.num_generations:
            raise ValueError(
                f"generation_batch_size {args.generation_batch_size} must be the plan's batch x num_generations = "
                f"{plan.batch_size * self.num_generations} (one generation batch per curriculum step)"
            )
        if args.max_steps != plan.total_steps * self.updates_per_step:
            raise ValueError(
                f"max_steps {args.max_steps} must be the plan's {plan.total_steps} steps x {self.updates_per_step} "
                f"optimizer steps per curriculum step = {plan.total_steps * self.updates_per_step}"
            )
        if args.save_strategy == "steps" and args.save_steps % self.updates_per_step:
            raise ValueError(
                f"save_steps {args.save_steps} must be a multiple of the {self.updates_per_step} optimizer steps of a "
                "curriculum step: a checkpoint inside a step cannot be resumed exactly"
            )
        self.val_dataset = val_dataset
        self.val_batch_size = val_batch_size
        self.val_generation_kwargs = dict(val_generation_kwargs or {})
        self.val_before_train = val_before_train
        self.engine = TRLEngine(
            self,
            BaseValues(
                lr=args.learning_rate,
                kl_coef=args.beta,
                clip_ratio_low=args.epsilon,
                clip_ratio_high=args.epsilon_high if args.epsilon_high is not None else args.epsilon,
                max_grad_norm=args.max_grad_norm,
                rollout_temperature=args.temperature,
                reward_kwargs=dict(reward_kwargs or {}),
                lr_warmup_ratio=lr_warmup_ratio,
            ),
        )
        self.engine.set_reward_kwargs({})  # the base reward settings hold unless a stage overrides them
        self.controller = StageController(plan, self.engine, engine_name="trl")
        self.stage_checkpoints: dict[int, str] = {}  # stage position -> stage checkpoint dir
        self.validations: dict[int, dict[str, float]] = {}  # stage position -> metrics
        self.curriculum_step = 0  # the curriculum step in progress (or last begun)
        self._step_stats: dict[str, Any] | None = None
        self._step_started = 0.0
        self._resumed_at: int | None = None  # completed steps of the checkpoint this process resumed from
        self._sample_ids = list(train_dataset["id"])
        # for the model cards: base_model (model.path as given) and files (stage name -> train files)
        self.run_info = dict(run_info or {})
        self.steps_log = StepsLog(args.output_dir)
        self.add_callback(_CurriculumCallback(self))
        # the step line replaces the progress bar and the metrics-dict printer (the metrics still go to report_to)
        self.remove_callback(ProgressCallback)
        self.remove_callback(PrinterCallback)
        for callback in self.callback_handler.callbacks:
            # TensorBoard's writer is made at the first log, which validation before training makes before
            # on_train_begin has pointed it at <output_dir>/runs (it would write to ./runs of the caller's cwd)
            if isinstance(callback, TensorBoardCallback) and callback.logging_dir is None:
                callback.logging_dir = os.path.join(args.output_dir, default_logdir())

    def say(self, line: str) -> None:
        """A line for the person watching (main process only)."""
        if self.accelerator.is_main_process:
            print(line, flush=True)

    # ------------------------------------------------------------------ data order

    def _get_train_sampler(self, dataset: Dataset | None = None) -> CurriculumRepeatSampler:
        return CurriculumRepeatSampler(
            self.plan,
            num_generations=self.num_generations,
            repeat_count=self.num_iterations * self.args.steps_per_generation,
        )

    def _prepare_inputs(self, generation_batch: Any) -> Any:
        if self.model.training:
            generate_every = self.args.steps_per_generation * self.num_iterations
            if self._step % generate_every == 0 or self._buffered_inputs is None:
                self._begin_curriculum_step(generation_batch)
        return super()._prepare_inputs(generation_batch)

    def _begin_curriculum_step(self, generation_batch: Sequence[dict[str, Any]]) -> None:
        step = self.controller.next_step
        expected = [index for index in self.plan.batch(step) for _ in range(self.num_generations)]
        local = len(generation_batch)
        start = self.accelerator.process_index * local
        got = [row["index"] for row in generation_batch]
        if got != expected[start : start + local]:
            raise CurriculumOrderError(
                f"curriculum step {step}: the generation batch holds rows {got[:8]}..., the plan expects "
                f"{expected[start : start + 8]}... (sampler and trainer disagree; was the data or the plan changed?)"
            )
        self.curriculum_step = step
        stage = self.controller.before_step(step)
        if step == stage.start_step or step == (self._resumed_at or 0) + 1:
            resumed = self._resumed_at if step != stage.start_step else None
            self.say(stage_banner(self.plan, stage, base_lr=self.engine.base.lr, resumed_at=resumed))
        self._step_started = time.monotonic()
        self._step_stats = None
        self._metrics["train"]["curriculum/stage"].append(float(stage.position + 1))
        self._metrics["train"]["curriculum/step"].append(float(step))

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):  # type: ignore[no-untyped-def]
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.model.training:
            weights = self.reward_weights.to(rewards_per_func.device)
            overall = (rewards_per_func * weights.unsqueeze(0)).nansum(dim=1)
            capabilities = gather_object([row["capability"] for row in inputs])
            lengths = gather_object([len(ids) for ids in completion_ids_list])
            self._step_stats = step_metrics(
                rewards=overall.tolist(),
                accuracies=rewards_per_func[:, ACCURACY].tolist(),
                formats=rewards_per_func[:, FORMAT].tolist(),
                lengths=lengths,
                capabilities=capabilities,
            )
        return rewards_per_func

    def finish_optimizer_step(self, global_step: int) -> bool:
        """Called after every optimizer step; ends the curriculum step after its last update. Returns whether a
        stage ended."""
        if global_step % self.updates_per_step:
            return False
        step = global_step // self.updates_per_step
        if step != self.curriculum_step or self._step_stats is None:
            raise CurriculumOrderError(
                f"optimizer step {global_step} ends curriculum step {step}, but {self.curriculum_step} ran"
            )
        stats = self._step_stats
        seconds = time.monotonic() - self._step_started
        stage = self.plan.stage_at(step)
        self.say(
            step_line(
                self.plan, step, reward=stats["reward"], accuracy=stats["accuracy"], length=stats["response_length"],
                seconds=seconds,
            )
        )  # fmt: skip
        if self.accelerator.is_main_process:
            ids = [self._sample_ids[index] for index in self.plan.batch(step)]
            record = step_record(
                step, stage.name, stage.position, ids, stats["reward"], stats["accuracy"],
                format=stats["format"], response_length=stats["response_length"], seconds=seconds,
            )  # fmt: skip
            self.steps_log.append(record | {"accuracy_counts": stats["accuracy_counts"]})
        self.controller.after_step(step)
        if step != stage.end_step:
            return False
        self._log_stage(stage)
        self.say(
            stage_end_line(
                self.plan, stage, step, self.stage_checkpoints.get(stage.position),
                self.validations.get(stage.position),
            )
        )  # fmt: skip
        return True

    # ------------------------------------------------------------------ optimizer and schedule

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """Every parameter goes into the optimizer, including a tower frozen at that moment, so a stage can unfreeze it
        later (the Trainer keeps only parameters that require grad when it builds the optimizer)."""
        tower = vision_tower(self.accelerator.unwrap_model(self.model))
        flags = [param.requires_grad for param in tower.parameters()]
        tower.requires_grad_(True)
        try:
            return super().create_optimizer(model)
        finally:
            for param, flag in zip(tower.parameters(), flags, strict=True):
                param.requires_grad_(flag)

    def create_scheduler(self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None) -> Any:
        if self.lr_scheduler is None:
            first = self.plan.stages[0]
            ratio = first.state.lr_warmup_ratio
            base = self.engine.base.lr_warmup_ratio
            warmup = warmup_steps(base if ratio is None else ratio, first.steps, self.updates_per_step)
            self.lr_scheduler = LambdaLR(optimizer or self.optimizer, StageWarmup(warmup))
            self._created_lr_scheduler = True
        return self.lr_scheduler

    # ------------------------------------------------------------------ checkpoints and resume

    def _save_checkpoint(self, model, trial):  # type: ignore[no-untyped-def]
        # Our state first, the Trainer's files next, the manifest last: only a checkpoint whose save finished is
        # complete (vlm_capcurriculum.checkpoints), and a re-save of the same step is incomplete until it ends.
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:
            folder.mkdir(parents=True, exist_ok=True)
            unseal(folder)
            state = {
                "version": STATE_VERSION,
                "plan_fingerprint": self.plan.fingerprint,
                "updates_per_step": self.updates_per_step,
                "completed_steps": self.state.global_step // self.updates_per_step,
                "reference_source": self.engine.reference_source,
                "history": {"checkpoints": self.stage_checkpoints, "validations": self.validations},
            }
            write_json_atomic(folder / STATE_FILE, state)
        super()._save_checkpoint(model, trial)
        self.accelerator.wait_for_everyone()  # every rank's files (its RNG state) are on disk
        if self.args.should_save:
            seal(folder)

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any) -> Any:
        """``Trainer.train``; ``resume_from_checkpoint=True`` picks :func:`last_complete_checkpoint`."""
        checkpoint: str | None = None
        if resume_from_checkpoint is True:
            found = last_complete_checkpoint(self.args.output_dir)
            if found is None:
                raise CurriculumStateError(f"no complete checkpoint to resume from in {self.args.output_dir}")
            checkpoint = str(found)
        elif resume_from_checkpoint:
            checkpoint = str(resume_from_checkpoint)
            try:
                require_complete(checkpoint)
            except CheckpointError as err:
                raise CurriculumStateError(f"{err} (backend.resume=auto picks the newest complete one)") from None
        completed = 0
        if checkpoint is not None:
            completed = self._restore_curriculum(Path(checkpoint))
            self._resumed_at = completed
        elif self.val_before_train and self.val_dataset is not None and len(self.val_dataset):
            # EasyR1's trainer.val_before_train: the base model's score, logged before step 1 (not on resume)
            self.run_validation(self.plan.stages[0], 0)
        if self.accelerator.is_main_process:
            self.steps_log.resume_at(completed)
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    def _restore_curriculum(self, checkpoint: Path) -> int:
        """Restore the curriculum state of ``checkpoint``; returns its completed curriculum steps."""
        path = checkpoint / STATE_FILE
        if not path.is_file():
            raise CurriculumStateError(f"{checkpoint} has no {STATE_FILE}: not a checkpoint of a curriculum run")
        state = json.loads(path.read_text())
        if state.get("version") != STATE_VERSION:
            raise CurriculumStateError(f"{path}: unknown state version {state.get('version')!r}")
        if state["plan_fingerprint"] != self.plan.fingerprint or state["updates_per_step"] != self.updates_per_step:
            raise CurriculumStateError(
                f"{path}: the checkpoint belongs to another plan or batch layout (fingerprint "
                f"{state['plan_fingerprint']}, {state['updates_per_step']} updates per step; this run: "
                f"{self.plan.fingerprint}, {self.updates_per_step}): the data, the curriculum or the batch settings changed"
            )
        completed = int(state["completed_steps"])
        trainer_state = json.loads((checkpoint / "trainer_state.json").read_text())
        if trainer_state["global_step"] != completed * self.updates_per_step:
            raise CurriculumStateError(
                f"{checkpoint}: global_step {trainer_state['global_step']} is not {completed} curriculum steps"
            )
        self.controller = StageController(self.plan, self.engine, completed_steps=completed, engine_name="trl")
        self.stage_checkpoints = {int(key): value for key, value in state["history"]["checkpoints"].items()}
        self.validations = {int(key): value for key, value in state["history"]["validations"].items()}
        self.curriculum_step = completed
        self.engine.restore_reference(state.get("reference_source"))
        logger.info("resuming the curriculum after step %d of %d from %s", completed, self.plan.total_steps, checkpoint)
        return completed

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: torch.nn.Module | None = None) -> None:
        target = self.model if model is None else model
        if self.is_deepspeed_enabled or self.is_fsdp_enabled or hasattr(target, "peft_config"):
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            return
        load_weights_strict(self.accelerator.unwrap_model(target), resume_from_checkpoint)

    def model_card(self, stage: PlannedStage | None = None, step: int | None = None) -> str:
        format_weight = float(self.reward_weights[FORMAT])
        base = self.run_info.get("base_model") or self.accelerator.unwrap_model(self.model).config._name_or_path
        files = self.run_info.get("files", {})
        return model_card(
            self.plan, base_model=str(base), files=files, format_weight=format_weight, stage=stage, step=step
        )

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Our run card in ``output_dir/README.md`` instead of TRL's generic one."""
        if self.is_world_process_zero():
            os.makedirs(self.args.output_dir, exist_ok=True)
            Path(self.args.output_dir, "README.md").write_text(self.model_card(), encoding="utf-8")

    # ------------------------------------------------------------------ metrics and validation

    def _log_stage(self, stage: PlannedStage) -> None:
        if not self.accelerator.is_main_process:  # the steps file is written there; the loggers run there
            return
        entry = self._stage_entry(stage, self.steps_log.read())  # the stage's last step was just written
        logs = {
            f"curriculum/{key}": value
            for key, value in entry.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        for capability, accuracy in entry["accuracy_by_capability"].items():
            logs[f"curriculum/accuracy/{capability}"] = accuracy
        self.log_event(logs)
        self.write_summary()

    def log_event(self, logs: dict[str, float]) -> None:
        """Log through the Trainer's loggers outside the step logging: TRL's running step metrics are not flushed,
        and the step's own log (``control.should_log``, which ``on_log`` clears) still happens."""
        should_log = self.control.should_log
        Trainer.log(self, logs)
        self.control.should_log = should_log

    def _stage_entry(self, stage: PlannedStage, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        return stage_entry(
            stage,
            records,
            self.updates_per_step,
            checkpoint=self.stage_checkpoints.get(stage.position),
            validation=self.validations.get(stage.position),
        )

    def write_summary(self) -> Path | None:
        """``curriculum_summary.json`` of the run so far, from the steps file (main process only)."""
        if not self.accelerator.is_main_process:
            return None
        records = self.steps_log.read()
        entries = (self._stage_entry(stage, records) for stage in self.plan.stages)
        stages = [entry for entry in entries if entry is not None]
        completed = records[-1]["step"] if records else 0
        path = Path(self.args.output_dir) / SUMMARY_FILE
        return write_summary(path, self.plan, stages, completed, updates_per_step=self.updates_per_step)

    def run_validation(self, stage: PlannedStage, step: int) -> dict[str, float]:
        """Generate one answer per validation question (``val_temperature``/``val_top_p`` from the generation
        kwargs) and score it with the rewards; logged as ``val/*`` and returned. Uses its own RNG stream, so
        training draws the same random numbers with or without validation."""
        if self.val_dataset is None or len(self.val_dataset) == 0:
            raise RuntimeError(
                "the plan validates at stage ends but the trainer has no validation data (data.val_files)"
            )
        model = self.model
        was_training = model.training
        model.eval()
        kwargs = {**self.generation_kwargs, **self.val_generation_kwargs}
        kwargs["do_sample"] = kwargs.get("temperature", 1.0) > 0
        if not kwargs["do_sample"]:
            kwargs.pop("temperature", None)
            kwargs.pop("top_p", None)
        generation = GenerationConfig(**kwargs, disable_compile=True)
        texts: list[str] = []
        lengths: list[int] = []
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            with (
                torch.random.fork_rng(devices=devices),
                unwrap_model_for_generation(
                    self.model_wrapped,
                    self.accelerator,
                    gather_deepspeed3_params=self.args.ds3_gather_for_generation,
                    gradient_checkpointing_kwargs=self.args.gradient_checkpointing_kwargs,
                ) as unwrapped,
                torch.no_grad(),
            ):
                torch.manual_seed(self.args.seed + step)
                for start in range(0, len(self.val_dataset), self.val_batch_size):
                    rows = self.val_dataset[start : start + self.val_batch_size]
                    prompts = [
                        prompt_text(prompt, images, self.processing_class, **self.chat_template_kwargs)
                        for prompt, images in zip(rows["prompt"], rows["images"], strict=True)
                    ]
                    images = [list(images) if images else None for images in rows["images"]]
                    inputs = self.processing_class(
                        text=prompts,
                        images=images if any(images) else None,
                        padding=True,
                        padding_side="left",
                        return_tensors="pt",
                    ).to(self.accelerator.device)
                    output = unwrapped.generate(**inputs, generation_config=generation)
                    completion_ids = output[:, inputs["input_ids"].shape[1] :]
                    is_eos = torch.isin(completion_ids, torch.tensor(self.eos_token_ids, device=completion_ids.device))
                    ends = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1) + 1, completion_ids.shape[1])
                    texts += self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)
                    lengths += ends.tolist()
        finally:
            if was_training:
                model.train()
        rows = self.val_dataset
        accuracies = accuracy_reward(texts, rows["ground_truth"], rows["answer_type"], rows["capability"])
        formats = format_reward(texts)
        accuracy_weight, format_weight = self.reward_weights.tolist()  # [ACCURACY, FORMAT]
        overall = [accuracy_weight * a + format_weight * f for a, f in zip(accuracies, formats, strict=True)]
        stats = step_metrics(
            rewards=overall, accuracies=accuracies, formats=formats, lengths=lengths, capabilities=rows["capability"]
        )
        metrics = {
            "val/reward": stats["reward"],
            "val/accuracy": stats["accuracy"],
            "val/format": stats["format"],
            "val/completion_length": stats["response_length"],
            "val/samples": float(len(overall)),
        }
        for capability, (correct, total) in sorted(stats["accuracy_counts"].items()):
            metrics[f"val/accuracy/{capability}"] = correct / total
        self.log_event({**metrics, "curriculum/stage": float(stage.position + 1)})
        logger.info("validation at step %d (stage %r): %s", step, stage.name, metrics)
        return metrics
