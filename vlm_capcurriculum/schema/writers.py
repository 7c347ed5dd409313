"""Write records in our own format (JSONL or parquet), readable back by :func:`read_records` unchanged."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from vlm_capcurriculum.schema.readers import JSONL_SUFFIXES, PARQUET_SUFFIXES
from vlm_capcurriculum.schema.record import CORE_FIELDS, SampleRecord


def write_records(records: Iterable[SampleRecord], path: str | os.PathLike[str]) -> int:
    """Write ``records`` to ``path`` (``.jsonl``/``.ndjson`` or ``.parquet``); returns the number written. Fields
    in a fixed order, so regenerated files diff cleanly."""
    path = Path(path)
    suffix = path.suffix.lower()
    rows = [record.to_dict() for record in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in JSONL_SUFFIXES:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    elif suffix in PARQUET_SUFFIXES:
        _write_parquet(rows, path)
    else:
        raise ValueError(f"{path}: cannot write {suffix!r}; use .jsonl or .parquet")
    return len(rows)


def _write_parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    core_types = {
        "id": pa.string(),
        "capability": pa.string(),
        "problem": pa.string(),
        "images": pa.list_(pa.string()),
        "answer": pa.string(),
        "answer_type": pa.string(),
        "choices": pa.map_(pa.string(), pa.string()),
        "pass_rate": pa.float64(),
        "source": pa.string(),
    }
    columns: dict[str, pa.Array] = {}
    for name in CORE_FIELDS:
        values = [row[name] for row in rows]
        if name == "choices":
            values = [list(choices.items()) for choices in values]
        columns[name] = pa.array(values, type=core_types[name])
    extra_names: list[str] = []
    for row in rows:
        extra_names += [key for key in row if key not in core_types and key not in extra_names]
    for name in extra_names:
        try:
            columns[name] = pa.array([row.get(name) for row in rows])
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise ValueError(
                f"{path}: extra column {name!r} has values parquet cannot hold in one column: {err}"
            ) from err
    pq.write_table(pa.table(columns), path)
