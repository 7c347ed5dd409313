"""Train/val/test split of the filtered perception MCQs by a hash of each example's id.

Without a seed, the reference's scheme (``data_pipeline/format_for_training.py``, 85/5/10; described in
``data_recipes/README.md``), so the same ids land in the same parts as the reference's files; a seed salts the
hash for another reproducible split. The part depends only on the id, so questions about one image share a part
and no image leaks from train into val or test.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.io import AtomicJsonlWriter
from vlm_capcurriculum.schema import DataFileError
from vlm_capcurriculum.schema.readers import iter_rows

SPLITS = ("train", "val", "test")
VAL_RATIO = 0.05  # reference format_for_training.py --val-ratio default
TEST_RATIO = 0.10  # reference format_for_training.py --test-ratio default
DEFAULT_PREFIX = "stage1_perception"  # reference format_for_training.py --prefix default


def split_of(key: str, *, val_ratio: float = VAL_RATIO, test_ratio: float = TEST_RATIO, seed: int | None = None) -> str:
    """The part (``train``/``val``/``test``) of the example ``key``: the reference's scheme when ``seed`` is None."""
    salted = key if seed is None else f"{seed}:{key}"
    bucket = int(hashlib.sha256(salted.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    if bucket < val_ratio:
        return "val"
    if bucket < val_ratio + test_ratio:
        return "test"
    return "train"


@dataclass
class SplitSummary:
    counts: Counter[str] = field(default_factory=Counter)
    outputs: dict[str, Path] = field(default_factory=dict)
    ids: int = 0  # distinct example ids

    def line(self) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{name} {self.counts[name]}" for name in SPLITS)
        return f"{total} rows of {self.ids} examples: {parts}"


def split_file(
    path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    prefix: str = DEFAULT_PREFIX,
    key: str = "id",
    val_ratio: float = VAL_RATIO,
    test_ratio: float = TEST_RATIO,
    seed: int | None = None,
) -> SplitSummary:
    """Split the rows of ``path`` (JSONL, JSON or parquet) by ``row[key]``; raises :class:`DataFileError` on a bad
    row (after writing nothing) and :class:`ValueError` on bad ratios."""
    if val_ratio < 0 or test_ratio < 0 or val_ratio + test_ratio > 1:
        raise ValueError(f"val ratio {val_ratio} and test ratio {test_ratio} must be >= 0 and sum to at most 1")
    rows: list[tuple[str, Any]] = []
    for location, row in iter_rows(path):
        if not isinstance(row, Mapping):
            raise DataFileError(f"{location}: not a JSON object")
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value).strip() == "":
            raise DataFileError(
                f"{location}: field {key!r}: needs a non-empty string or integer id to split by, got {value!r}"
            )
        rows.append((split_of(str(value), val_ratio=val_ratio, test_ratio=test_ratio, seed=seed), row))
    summary = SplitSummary(ids=len({str(row[key]) for _, row in rows}))
    output = Path(output_dir)
    writers = {name: AtomicJsonlWriter(output / f"{name}_{prefix}.jsonl") for name in SPLITS}
    try:
        for part, row in rows:
            try:
                writers[part].write(row)
            except TypeError as err:  # e.g. parquet image bytes: JSON lines cannot hold them
                raise DataFileError(f"{path}: row {row.get(key)!r} cannot be written as JSON: {err}") from None
            summary.counts[part] += 1
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for name, writer in writers.items():
        writer.commit()
        summary.outputs[name] = writer.path
    report = {
        "input": str(path),
        "key": key,
        "scheme": "sha256(id)[:8] / 0xFFFFFFFF" if seed is None else f"sha256('{seed}:' + id)[:8] / 0xFFFFFFFF",
        "val_ratio": val_ratio,
        "test_ratio": test_ratio,
        "seed": seed,
        "examples": summary.ids,
        "rows": {name: summary.counts[name] for name in SPLITS},
        "outputs": {name: str(p) for name, p in summary.outputs.items()},
    }
    summary_path = output / f"split_{prefix}.summary.json"
    summary_path.write_text(json.dumps(report, indent=2) + "\n")
    summary.outputs["summary"] = summary_path
    return summary
