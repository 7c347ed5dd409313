"""The curriculum's global index space as ONE EasyR1 data file (row ``i`` is global index ``i``, so the sampler's
indices need no translation), and the validation data next to it. ``RLHFDataset`` passes every column it does not
read through to the batch, which is how the trainer checks that each step trains exactly the planned samples
(``curriculum_index``). Image paths are absolute: they survive its join with ``data.image_dir``. Imports nothing
from EasyR1 (CI tests it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vlm_capcurriculum.curriculum import CurriculumData
from vlm_capcurriculum.schema import DataFileError, read_records

PROMPT_KEY = "problem"
ANSWER_KEY = "answer"
IMAGE_KEY = "images"
CAPABILITY_KEY = "capability"
INDEX_KEY = "curriculum_index"
SAMPLE_ID_KEY = "sample_id"  # the record id, for the steps file (curriculum_steps.jsonl)


def _row(record: Any, images: list[str] | None) -> dict[str, Any]:
    row: dict[str, Any] = {PROMPT_KEY: record.problem, ANSWER_KEY: record.ground_truth()}
    if images is not None:  # only when some record has images: a text-only model has no processor
        row[IMAGE_KEY] = images
    row[CAPABILITY_KEY] = record.capability
    return row


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write ``rows`` as JSON lines, atomically (a concurrent reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with staging.open("w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    staging.replace(path)
    return path


def write_train_file(data: CurriculumData, path: str | os.PathLike[str]) -> Path:
    """One EasyR1 row per record of the global index space, in index order."""
    with_images = any(record.images for record in data.records)
    rows = (
        {
            **_row(record, [str(image) for image in data.image_paths(index)] if with_images else None),
            INDEX_KEY: index,
            SAMPLE_ID_KEY: record.id,
        }
        for index, record in enumerate(data.records)
    )
    return write_jsonl(rows, path)


def write_val_file(entry: str, path: str | os.PathLike[str]) -> str:
    """The ``data.val_files`` value for EasyR1 (one source). A local file (any format our reader takes) is read with
    the same validation as training data and written in EasyR1 columns to ``path``, so validation questions reach the
    reward in the same ground-truth encoding; anything else (``hiyouga/geometry3k@test``, a folder) is EasyR1's."""
    if not entry.strip():
        raise DataFileError("data.val_files: empty; EasyR1 validates on a data set (a file or `name@split`)")
    local = Path(os.path.expanduser(entry))
    if not local.is_file():
        return entry
    result = read_records([local], strict=True)
    with_images = any(record.images for record in result.records)
    rows = [
        _row(
            record, [str((location.path.parent / image).absolute()) for image in record.images] if with_images else None
        )
        for record, location in zip(result.records, result.locations, strict=True)
    ]
    return str(write_jsonl(rows, path))
