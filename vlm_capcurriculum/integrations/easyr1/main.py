"""The EasyR1 entry point: ``python -m vlm_capcurriculum.integrations.easyr1 config=FILE.yaml key=value ... [--dry-run]``.

The arguments are exactly ``python -m verl.trainer.main``'s (EasyR1's whole config, strict keys) plus our
``curriculum:`` block (docs/integrations/easyr1.md). ``--dry-run`` checks everything, builds the real loaders and
prints the plan, without Ray or model weights; a run trains the plan in one EasyR1 run or, with
``curriculum.execution=chained``, one run per stage.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import CurriculumData, Plan, PlanError, build_plan, load_curriculum_data
from vlm_capcurriculum.curriculum.plan_table import print_plan
from vlm_capcurriculum.schema import DataFileError, RecordValidationError

from .chained import run_chain, stage_command
from .installed import EasyR1VersionError
from .layout import StageLayout
from .records import write_train_file, write_val_file

PROGRAM = "python -m vlm_capcurriculum.integrations.easyr1"


@dataclass
class PreparedRun:
    run: Any  # config.RunConfig
    data: CurriculumData
    plan: Plan
    layout: StageLayout
    vision: str
    dropped_overlong: int
    notes: list[str]
    tokenizer: Any = None
    processor: Any = None


def _plan_or_error(run: Any, data: CurriculumData) -> Plan:
    try:
        return build_plan(run.spec, data.stage_data())
    except PlanError as error:
        raise ConfigError(f"{run.source}: {error}") from None


def load_data(run: Any) -> tuple[CurriculumData, Plan]:
    """Every stage's records (strict: a bad row is an error naming file, line and field) and their plan."""
    try:
        data = load_curriculum_data(run.spec)
    except RecordValidationError as error:
        raise ConfigError(f"{run.source}: {error.one_line()}") from None
    except (DataFileError, PlanError) as error:
        raise ConfigError(f"{run.source}: {error}") from None
    return data, _plan_or_error(run, data)


def prepare(run: Any, *, root: str | None = None) -> PreparedRun:
    """Everything before Ray, for one EasyR1 run of the whole plan (``execution=single``)."""
    from verl.utils.checkpoint import CHECKPOINT_TRACKER

    from .config import apply_plan, check_config, check_plan
    from .data import drop_overlong_prompts, load_tokenizer_and_processor, use_our_columns

    config = run.config
    notes = check_config(run)
    data, plan = load_data(run)
    check_plan(run, plan)  # before the tokenizer is loaded and the prompts are measured: fail fast
    layout = StageLayout(root or config.trainer.save_checkpoint_path)
    tokenizer, processor = load_tokenizer_and_processor(config)
    use_our_columns(config)
    write_train_file(data, layout.train_file)
    data, dropped = drop_overlong_prompts(config, tokenizer, processor, data, layout.train_file)
    if dropped:
        plan = _plan_or_error(run, data)
        check_plan(run, plan)
        notes.append(
            f"EasyR1's overlong-prompt filter (data.filter_overlong_prompts, > {config.data.max_prompt_length} "
            f"tokens) removed {dropped} training prompts; the plan is built without them (per-stage counts below)"
        )
    vision = apply_plan(run, plan)
    try:
        val_file = write_val_file(str(config.data.val_files), layout.val_file)
    except (DataFileError, RecordValidationError) as error:
        detail = error.one_line() if isinstance(error, RecordValidationError) else str(error)
        raise ConfigError(f"{run.source}: data.val_files: {detail}") from None
    config.data.val_files = val_file
    config.data.train_files = layout.train_file
    # Refuse to resume checkpoints of another plan (before Ray starts; the sampler would refuse them later), by the
    # plan.json a previous launch left, before it is replaced.
    plan_file = Path(layout.plan_file)
    old = json.loads(plan_file.read_text(encoding="utf-8")).get("fingerprint") if plan_file.is_file() else None
    resuming = config.trainer.load_checkpoint_path is not None or (
        config.trainer.find_last_checkpoint and (Path(layout.root) / CHECKPOINT_TRACKER).is_file()
    )
    if resuming and old is not None and old != plan.fingerprint:
        raise ConfigError(
            f"{layout.root} holds checkpoints of another plan (fingerprint {old}, now {plan.fingerprint}): the data, "
            "the curriculum or its seed changed. Use another trainer.save_checkpoint_path, or "
            "trainer.find_last_checkpoint=false to start over"
        )
    record = plan.to_json()
    record["data"] = [
        {"name": stage.stage.name, "files": [str(path) for path in stage.files], "report": stage.report.summary()}
        for stage in data.stages
    ]
    plan_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return PreparedRun(run, data, plan, layout, vision, dropped, notes, tokenizer, processor)


def print_summary(prepared: PreparedRun, *, header: str) -> None:
    config = prepared.run.config
    print(header)
    print_plan(prepared.plan, prepared.data)
    print(
        f"EasyR1: trainer.max_steps={config.trainer.max_steps}, data.rollout_batch_size="
        f"{config.data.rollout_batch_size}, worker.rollout.n={config.worker.rollout.n}, "
        f"worker.actor.global_batch_size={config.worker.actor.global_batch_size}, vision tower: {prepared.vision} "
        f"(freeze_vision_tower={config.worker.actor.model.freeze_vision_tower}, "
        f"use_orig_params={config.worker.actor.fsdp.use_orig_params})"
    )
    print(f"EasyR1: data.train_files={config.data.train_files}, data.val_files={config.data.val_files}")
    print(f"EasyR1: reward {config.worker.reward.reward_function}:{config.worker.reward.reward_function_name}")
    for note in prepared.notes:
        print(f"note: {note}")


def dry_run(run: Any) -> int:
    """Build the real EasyR1 config and loaders, draw step 1's batch, print the plan; no Ray, no model weights."""
    from .data import train_dataloader, val_dataloader

    with tempfile.TemporaryDirectory(prefix="vlmcc-easyr1-dry-run-") as root:
        prepared = prepare(run, root=root)
        config = prepared.run.config
        loader = train_dataloader(
            config, prepared.tokenizer, prepared.processor, prepared.plan, config.data.train_files
        )
        val_loader = val_dataloader(config, prepared.tokenizer, prepared.processor)
        first = next(iter(loader))
        print_summary(prepared, header=f"dry run: {run.source} (files in a temporary directory, removed on exit)")
        print(
            f"EasyR1: train loader {len(loader)} batches of {loader.batch_size} (= steps), step 1 trains global "
            f"indices {list(first['curriculum_index'][:8])}{'...' if loader.batch_size > 8 else ''}; "
            f"validation loader {len(val_loader.dataset)} prompts"
        )
    return 0


def chained(run: Any, *, dry_run_only: bool) -> int:
    """``curriculum.execution=chained``: one EasyR1 run per stage (chained.py); a dry run lists them."""
    from .config import check_config, check_plan

    notes = check_config(run)
    data, plan = load_data(run)
    check_plan(run, plan)
    layout = StageLayout(run.config.trainer.save_checkpoint_path)
    for note in notes:
        print(f"note: {note}")
    if not dry_run_only:
        print(f"[curriculum] chain finished: final model {run_chain(run.node, run.spec, plan, layout)}")
        return 0
    print(f"dry run: {run.source}, chained: one EasyR1 run per stage")
    print_plan(plan, data)
    for stage in plan.stages:
        config_file = f"{layout.chained_run_dir(stage.position, stage.name)}/config.yaml"
        print(f"stage {stage.position + 1}: {' '.join(stage_command(config_file))} -> "
              f"{layout.stage_model(stage.position, stage.name)}")  # fmt: skip
    return 0


def run_config(run: Any, *, dry_run_only: bool) -> int:
    """Dry-run or train a loaded :class:`~vlm_capcurriculum.integrations.easyr1.config.RunConfig`."""
    if run.execution == "chained":
        return chained(run, dry_run_only=dry_run_only)
    if dry_run_only:
        return dry_run(run)
    prepared = prepare(run)
    print_summary(prepared, header=f"training: {run.source}")
    from .runner import train  # imports Ray and EasyR1's trainer (vLLM): training machines only

    train(run.config, prepared.plan, run.config.data.train_files)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(__doc__)
        return 0
    dry = "--dry-run" in args
    args = [arg for arg in args if arg != "--dry-run"]
    try:
        from .config import load_run_config  # refuses an EasyR1 other than the supported one (installed.py)

        return run_config(load_run_config(args), dry_run_only=dry)
    except (ConfigError, EasyR1VersionError) as error:  # one line, no traceback
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return 2
