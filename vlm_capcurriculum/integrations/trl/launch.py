"""``vlmcc train ... backend=trl``: the whole curriculum in one TRL ``GRPOTrainer`` run (CPU or one GPU).

Every recipe error surfaces before the model loads (``dry_run`` stops there); ``model.path: tiny://<family>`` builds
a tiny model (:mod:`vlm_capcurriculum.models.tiny`); ``backend.resume: auto`` continues from the newest complete
checkpoint in the output directory.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlm_capcurriculum.curriculum import (
    CurriculumData,
    Plan,
    PlanError,
    SpecError,
    UnsupportedOverrideError,
    build_plan,
    parse_curriculum,
    plan_curriculum,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.run_layout import STAGES_DIR, STEPS_FILE, SUMMARY_FILE
from vlm_capcurriculum.launch import LaunchError
from vlm_capcurriculum.models.tiny import TinyModelError, tiny_family
from vlm_capcurriculum.schema import DataFileError, RecordValidationError, SampleRecord, read_records

from .config import TRLConfigError, TRLSettings, build_settings

logger = logging.getLogger(__name__)

#: capability of validation rows that name none (e.g. the paper's Geometry3K validation file)
VALIDATION_CAPABILITY = "validation"


def _one_line(error: BaseException) -> str:
    if isinstance(error, RecordValidationError):
        return error.one_line()
    return " ".join(str(error).split())


def load_validation(files: Sequence[str], *, max_samples: int | None) -> tuple[list[SampleRecord], list[list[Path]]]:
    """Records and absolute image paths of ``data.val_files`` (bad rows are skipped and reported)."""
    result = read_records(list(files), capability=VALIDATION_CAPABILITY, strict=False)
    if result.report.issues:
        logger.warning("validation data: %s", result.report.summary())
    records, locations = result.records, result.locations
    if max_samples is not None:
        records, locations = records[:max_samples], locations[:max_samples]
    if not records:
        raise DataFileError(f"data.val_files {list(files)}: no usable validation rows ({result.report.summary()})")
    paths = [
        [(loc.path.parent / image).absolute() for image in rec.images]
        for rec, loc in zip(records, locations, strict=True)
    ]
    return records, paths


def check_model_path(path: str) -> None:
    """A local model folder must exist and hold a config.json; a Hugging Face id (``org/name``) is left to the hub."""
    local = Path(os.path.expanduser(path))
    looks_local = local.is_absolute() or path.startswith((".", "~")) or path.count("/") > 1 or local.exists()
    if not looks_local:
        return
    if not local.is_dir():
        raise DataFileError(
            f"model.path {path!r} is not a directory (set model.path, or backend.model_path, to a model folder, a "
            "Hugging Face id like Qwen/Qwen3-VL-8B-Instruct, or tiny://<family>)"
        )
    if not (local / "config.json").is_file():
        raise DataFileError(f"model.path {path!r} holds no config.json: not a Hugging Face model folder")


def _planned(config: DictConfig, data: CurriculumData | None = None) -> tuple[CurriculumData, Plan, TRLSettings]:
    """The recipe's plan and settings, on ``data`` when given (the records left after dropping overlong prompts)."""
    from .engine import SUPPORTED_OPERATIONS

    spec = parse_curriculum(config.get("curriculum"))
    if data is None:
        data, plan = plan_curriculum(spec)
    else:
        plan = build_plan(spec, data.stage_data())
    validate_plan_for_engine(plan, SUPPORTED_OPERATIONS, engine_name="trl")
    return data, plan, build_settings(config, plan)


def prepare(
    config: DictConfig,
) -> tuple[CurriculumData, Plan, TRLSettings, tuple[list[SampleRecord], list[list[Path]]] | None]:
    """Everything up to loading the model; every recipe error becomes a one-line :class:`LaunchError`."""
    try:
        data, plan, settings = _planned(config)
        if tiny_family(settings.model_path) is None:  # an unknown tiny family fails here, before the data loads
            check_model_path(settings.model_path)
        validation = None
        if any(stage.state.flag("validate") for stage in plan.stages):
            files = OmegaConf.select(config, "data.val_files", default=None) or []
            files = [files] if isinstance(files, str) else [str(path) for path in files]
            if not files:
                raise DataFileError(
                    "the curriculum validates at stage ends (validate: true) but data.val_files is empty; set it or "
                    "curriculum.overrides.validate=false"
                )
            missing = [path for path in files if not Path(path).is_file()]
            if missing:
                raise DataFileError(f"data.val_files: {missing[0]!r} is not a file (the TRL backend reads local files)")
            validation = load_validation(files, max_samples=settings.val_max_samples)
    except (
        SpecError,
        PlanError,
        DataFileError,
        RecordValidationError,
        UnsupportedOverrideError,
        TRLConfigError,
        TinyModelError,
    ) as err:
        raise LaunchError(f"backend trl: {_one_line(err)}") from err
    return data, plan, settings, validation


def _resume_checkpoint(settings: TRLSettings) -> str | None:
    from .trainer import last_complete_checkpoint

    found = last_complete_checkpoint(settings.output_dir)
    if settings.resume == "auto":
        return str(found) if found else None
    if settings.resume in ("never", "false", "False"):
        if found is not None:
            raise LaunchError(
                f"backend trl: {settings.output_dir} already holds checkpoints ({found.name}); use another "
                "OUTPUT_DIR / backend.output_dir, or backend.resume=auto to continue that run"
            )
        return None
    if not Path(settings.resume).is_dir():
        raise LaunchError(f"backend.resume: {settings.resume!r} is neither auto, never nor a checkpoint directory")
    return settings.resume


def _load_model(settings: TRLSettings, data: CurriculumData) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlm_capcurriculum.models.tiny import prepare_tiny_model  # the models package registers our processors

    path = settings.model_path
    family = tiny_family(path)
    if family is not None:
        path = str(
            prepare_tiny_model(
                family,
                settings.output_dir,
                seed=settings.tiny_seed,
                warm_start_steps=settings.tiny_warm_start_steps,
                records=data.records,
                image_paths=data.image_paths,
                template=settings.format_prompt,
            )
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, settings.dtype))
        processor = AutoProcessor.from_pretrained(path)
    except OSError as err:  # a hub id that does not exist, no network, a folder without weights
        raise LaunchError(f"backend trl: model.path {path!r} cannot be loaded: {_one_line(err)}") from err
    return model, processor


def launch(config: DictConfig, *, dry_run: bool) -> int:
    """The ``backend.launcher`` of ``recipes/backend/trl.yaml``."""
    from vlm_capcurriculum.curriculum.plan_table import print_plan

    data, plan, settings, validation = prepare(config)
    print_plan(plan, data)
    for line in settings.describe():
        print(line)
    if dry_run:
        return 0
    from transformers.utils import logging as hf_logging

    from vlm_capcurriculum.checkpoints import CheckpointError

    from .console import print_stage_table
    from .trainer import STATE_FILE, CurriculumStateError, last_complete_checkpoint

    hf_logging.disable_progress_bar()  # per-shard save/load bars at every stage checkpoint: noise next to the step lines
    checkpoint = _resume_checkpoint(settings)
    summary = settings.output_dir / SUMMARY_FILE
    state = Path(checkpoint, STATE_FILE) if checkpoint else None
    if state and state.is_file() and json.loads(state.read_text())["completed_steps"] == plan.total_steps:
        if summary.is_file():
            print_stage_table(json.loads(summary.read_text()).get("stages", []))
        print(
            f"TRL: this run is complete: all {plan.total_steps} steps are done ({checkpoint}); stage models in "
            f"{settings.output_dir / STAGES_DIR}. Nothing to train; use a new OUTPUT_DIR / backend.output_dir to start over"
        )
        return 0
    trainer = None
    try:
        trainer = build_trainer(data, plan, settings, validation, config=config)
        if checkpoint:
            print(f"TRL: resuming from {checkpoint}")
        trainer.train(resume_from_checkpoint=checkpoint)
    except (CurriculumStateError, CheckpointError, TinyModelError) as err:
        raise LaunchError(f"backend trl: {_one_line(err)}") from err
    except KeyboardInterrupt:
        found = last_complete_checkpoint(settings.output_dir)
        step = trainer.curriculum_step if trainer is not None else 0
        at = f"at step {step}" if step else "before the first step"
        resume = f"resume from checkpoint {found}" if found else "start over (no checkpoint was written yet)"
        print(f"\nTRL: interrupted {at}; run the same command again to {resume}", file=sys.stderr, flush=True)
        return 130
    print_stage_table(json.loads(summary.read_text())["stages"])
    print(f"TRL: per-stage summary in {summary}, one line per step in {settings.output_dir / STEPS_FILE}")
    return 0


def build_trainer(
    data: CurriculumData,
    plan: Plan,
    settings: TRLSettings,
    validation: tuple[list[SampleRecord], list[list[Path]]] | None,
    *,
    config: DictConfig,
) -> Any:
    """The model, datasets and :class:`CurriculumGRPOTrainer` of a prepared recipe; prompts over
    ``settings.max_prompt_length`` are dropped here, where the processor can measure them."""
    os.makedirs(settings.output_dir, exist_ok=True)
    from .dataset import build_dataset, with_pixel_bounds
    from .trainer import CurriculumGRPOTrainer

    model, processor = _load_model(settings, data)

    def dataset_of(records: Sequence[SampleRecord], image_paths: Any) -> Any:
        dataset = build_dataset(records, image_paths, template=settings.format_prompt)
        return with_pixel_bounds(dataset, settings.min_pixels, settings.max_pixels)

    train_dataset = dataset_of(data.records, data.image_paths)
    if settings.max_prompt_length is not None:
        data, plan, settings = _drop_overlong_prompts(config, data, plan, settings, train_dataset, processor)
        train_dataset = dataset_of(data.records, data.image_paths)
    val_dataset = None
    if validation is not None:
        records, paths = validation
        val_dataset = dataset_of(records, lambda i: paths[i])
    return CurriculumGRPOTrainer(
        model,
        plan=plan,
        args=settings.grpo,
        train_dataset=train_dataset,
        processing_class=processor,
        val_dataset=val_dataset,
        reward_kwargs=settings.reward_kwargs,
        lr_warmup_ratio=settings.lr_warmup_ratio,
        val_batch_size=settings.val_batch_size,
        val_generation_kwargs=settings.val_generation_kwargs,
        val_before_train=settings.val_before_train,
        run_info={
            "base_model": settings.model_path,
            "files": {stage.stage.name: [str(path) for path in stage.files] for stage in data.stages},
        },
    )


def _drop_overlong_prompts(
    config: DictConfig, data: CurriculumData, plan: Plan, settings: TRLSettings, dataset: Any, processor: Any
) -> tuple[CurriculumData, Plan, TRLSettings]:
    """EasyR1's ``filter_overlong_prompts`` for TRL: drop the training prompts above ``train.max_prompt_length``
    tokens, count them in each stage's read report, and plan and configure the run again without them."""
    from vlm_capcurriculum.curriculum.data import without_records

    from .dataset import prompt_lengths

    limit = settings.max_prompt_length
    lengths = prompt_lengths(dataset, processor)
    overlong = [i for i, length in enumerate(lengths) if length > limit]
    if not overlong:
        return data, plan, settings
    first = f"{data.records[overlong[0]].id!r}, {lengths[overlong[0]]} tokens"
    try:
        data, plan, settings = _planned(config, without_records(data, overlong))
    except (PlanError, SpecError, TRLConfigError, UnsupportedOverrideError) as err:
        raise LaunchError(
            f"backend trl: after dropping {len(overlong)} prompts over train.max_prompt_length={limit}: {_one_line(err)}"
        ) from err
    print(
        f"TRL: dropped {len(overlong)} training prompts longer than train.max_prompt_length={limit} tokens "
        f"(EasyR1's filter_overlong_prompts; first: {first}); the plan without them:"
    )
    from vlm_capcurriculum.curriculum.plan_table import print_plan

    print_plan(plan, data)
    return data, plan, settings
