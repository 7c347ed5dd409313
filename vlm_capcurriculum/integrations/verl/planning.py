"""The curriculum plan inside a verl run (from verl's ``curriculum`` config block, planned with the core's
``plan_curriculum``: deterministic and cached per process, so the trainer and the dataset agree on every index) and
the training order it gives the dataset (:mod:`.dataset`), checked row by row against the training files. No verl
import here: the launcher's dry run uses this module too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import (
    CurriculumData,
    Plan,
    expand_train_files,
    parse_curriculum,
    plan_curriculum,
)

#: Keys of verl's ``curriculum`` block that belong to this integration, not to the core's spec.
PLUGIN_KEYS: tuple[str, ...] = ("output_dir",)


def file_tag(position: int, name: str) -> str:
    """``NN_<name>``, file-name safe, for the stage (or file) at 0-based ``position``: ``02_text_reasoning``."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "stage"
    return f"{position + 1:02d}_{safe}"


def spec_block(curriculum: DictConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """The core's curriculum spec from verl's ``curriculum`` block: resolved, without :data:`PLUGIN_KEYS`."""
    if curriculum is None:
        block: Any = {}
    elif isinstance(curriculum, DictConfig):
        block = OmegaConf.to_container(curriculum, resolve=True)
    else:
        block = dict(curriculum)
    block = {key: value for key, value in (block or {}).items() if key not in PLUGIN_KEYS}
    if not block.get("stages"):
        raise ConfigError(
            "the verl config has no curriculum: select one with curriculum=<name> (a curriculum/<name>.yaml on "
            "Hydra's search path, e.g. the one `vlmcc train ... backend=verl --dry-run` writes) or set "
            "curriculum.stages and the other keys of vlm_capcurriculum's curriculum spec"
        )
    return block


@lru_cache(maxsize=4)
def _plan_cached(key: str) -> tuple[CurriculumData, Plan]:
    block = json.loads(key)["spec"]
    # Images were checked when the training files were written; the plan needs the records' order and pass rates.
    return plan_curriculum(parse_curriculum(block), check_images=False)


def load_plan(curriculum: DictConfig | Mapping[str, Any] | None) -> tuple[CurriculumData, Plan]:
    """The curriculum's data and plan (relative paths against the current directory), cached per process while
    the spec and its files are unchanged."""
    block = spec_block(curriculum)
    spec = parse_curriculum(block)
    files = [
        (str(path), path.stat().st_mtime_ns, path.stat().st_size) for s in spec.stages for path in expand_train_files(s)
    ]
    key = json.dumps({"spec": block, "cwd": os.getcwd(), "files": files}, sort_keys=True, default=str)
    return _plan_cached(key)


def check_rows_match(data: CurriculumData, files: Sequence[str]) -> None:
    """The training files must hold the curriculum's records in the global index order; raise naming the first
    row that differs."""
    ids = []
    for path in files:
        if not path.endswith(".parquet"):
            raise ConfigError(
                f"training file {path}: the curriculum dataset reads the parquet files written by "
                "write_verl_parquet (vlmcc train ... backend=verl writes them)"
            )
        try:
            column = pq.read_table(path, columns=["extra_info.id"]).column(0)
        except (KeyError, ValueError) as error:
            raise ConfigError(f"training file {path} has no extra_info.id column ({error})") from None
        ids.append((path, [str(value) for value in column.to_pylist()]))
    total = sum(len(rows) for _, rows in ids)
    if total != len(data):
        counts = ", ".join(f"{stage.stage.name} {len(stage.records)}" for stage in data.stages)
        raise ConfigError(
            f"data.train_files hold {total} rows but the curriculum's stages hold {len(data)} records ({counts}): "
            "the training files must be every stage's records, in stage order"
        )
    position = 0
    for path, rows in ids:
        for row, row_id in enumerate(rows):
            record_id = data.records[position].id
            if row_id != record_id:
                stage, local = data.locate(position)
                raise ConfigError(
                    f"{path} row {row} has id {row_id!r}, but record {position} of the curriculum (stage "
                    f"{stage.stage.name!r}: {stage.locations[local]}) is {record_id!r}: the training files must be "
                    "every stage's records, in stage order"
                )
            position += 1


def training_order(curriculum: Any, files: Sequence[str]) -> list[int]:
    """The plan's exact index order for the dataset, after checking that the training files are the plan's global
    index space."""
    data, plan = load_plan(curriculum)
    check_rows_match(data, files)
    return list(plan.indices)


def check_run_shape(plan: Plan, config: DictConfig) -> None:
    """The verl settings that decide which rows each step trains must agree with the plan."""
    data, trainer = config.data, config.trainer
    problems = []
    if data.train_batch_size != plan.batch_size:
        problems.append(
            f"data.train_batch_size={data.train_batch_size} but curriculum.batch_size={plan.batch_size} "
            "(one step trains one batch of the plan)"
        )
    gen_batch_size = data.get("gen_batch_size")
    if gen_batch_size and data.train_batch_size % gen_batch_size:
        problems.append(f"data.gen_batch_size={gen_batch_size} does not divide data.train_batch_size")
    if data.get("shuffle", False):
        problems.append("data.shuffle=true would undo the curriculum order")
    if trainer.total_epochs != 1:
        problems.append(f"trainer.total_epochs={trainer.total_epochs}: the curriculum order already holds every epoch")
    if trainer.get("total_training_steps") not in (None, plan.total_steps):
        problems.append(
            f"trainer.total_training_steps={trainer.total_training_steps} but the plan has {plan.total_steps} steps"
        )
    filter_groups = config.algorithm.get("filter_groups") or {}
    if filter_groups.get("enable", False):
        problems.append("algorithm.filter_groups (DAPO) draws extra prompts per step: stages would drift")
    if trainer.get("v1", {}).get("sampler", {}).get("sync_refill_failed_groups", False):
        problems.append("trainer.v1.sampler.sync_refill_failed_groups draws extra prompts per step")
    if problems:
        raise ConfigError("the verl config does not fit the curriculum plan: " + "; ".join(problems))


def absolute_spec_paths(block: Mapping[str, Any], base: Path | None = None) -> dict[str, Any]:
    """``block`` with every stage's ``train_files`` and ``image_root`` made absolute (against ``base``, default
    the current directory), so the spec means the same in every process of a run."""
    base = base or Path.cwd()

    def absolute(path: str) -> str:
        expanded = Path(os.path.expanduser(path))
        return str(expanded if expanded.is_absolute() else base / expanded)

    out = dict(block)
    out["stages"] = [
        {
            **stage,
            "train_files": [absolute(str(entry)) for entry in stage.get("train_files") or []],
            **({"image_root": absolute(str(stage["image_root"]))} if stage.get("image_root") else {}),
        }
        for stage in block.get("stages") or []
    ]
    return out
