"""Over-long training prompts, dropped and counted before verl starts, as EasyR1's ``filter_overlong_prompts`` does.

verl's own filter would drop rows the curriculum order indexes (our dataset refuses it), so the launcher measures
every written training row with it (``RLHFDataset`` with the filter on, images read as the agent loop reads them),
removes the dropped rows from the curriculum's data, writes the kept records as the stages' training files and
plans again; each stage's read report counts its dropped rows.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from omegaconf import DictConfig, OmegaConf

from vlm_capcurriculum.curriculum import CurriculumData
from vlm_capcurriculum.schema import write_records

from .planning import file_tag


def overlong_rows(config: DictConfig, train_files: Sequence[Path]) -> list[int]:
    """Indices (over the files in order) of the rows verl's overlong-prompt filter drops under ``config``."""
    from verl.utils import hf_processor, hf_tokenizer

    from .dataset import FilesOrderRLDataset

    model = config.actor_rollout_ref.model
    trust = bool(model.get("trust_remote_code", False))
    tokenizer = hf_tokenizer(str(model.path), trust_remote_code=trust)
    processor = hf_processor(str(model.path), trust_remote_code=trust, use_fast=True)
    data_config = OmegaConf.merge(config.data, {"filter_overlong_prompts": True})
    dropped: list[int] = []
    offset = 0
    for path in train_files:
        kept = FilesOrderRLDataset(str(path), tokenizer, data_config, processor).dataframe
        kept_rows = {int(info["index"]) for info in kept["extra_info"]}
        rows = pq.ParquetFile(path).metadata.num_rows
        dropped += [offset + row for row in range(rows) if row not in kept_rows]
        offset += rows
    return dropped


def write_kept_records(data: CurriculumData, curriculum: dict[str, Any], directory: Path) -> dict[str, Any]:
    """Each stage's records as ``<directory>/kept_NN_<stage>.jsonl`` and the curriculum block reading them instead of
    the source files. Image paths are rewritten relative to the folder that holds all of the stage's images, which
    becomes the stage's ``image_root`` (so the image-root containment check still applies)."""
    stages = []
    for position, (stage, block) in enumerate(zip(data.stages, curriculum["stages"], strict=True)):
        absolute = [stage.image_paths(index) for index in range(len(stage.records))]
        folders = {str(path.parent) for paths in absolute for path in paths}
        root = Path(os.path.commonpath(sorted(folders))) if folders else directory
        records = [
            dataclasses.replace(record, images=tuple(os.path.relpath(path, root) for path in paths))
            for record, paths in zip(stage.records, absolute, strict=True)
        ]
        path = directory / f"kept_{file_tag(position, stage.stage.name)}.jsonl"
        write_records(records, path)
        stages.append({**block, "train_files": [str(path)], "image_root": str(root)})
    return {**curriculum, "stages": stages}
