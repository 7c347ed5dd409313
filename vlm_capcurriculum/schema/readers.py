"""Read sample records from JSONL, JSON and parquet files, validating every row.

``strict=True`` raises :class:`RecordValidationError` with *every* issue, so one run shows the whole damage;
``strict=False`` keeps the good rows and counts the skipped ones per reason. A whole file that cannot be used is
always a :class:`DataFileError`: losing a file is not a row-level skip. ``.json`` may hold an array of rows or
JSON lines, as the Hugging Face ``json`` loader accepts.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.schema.columns import UniqueRecords, image_paths
from vlm_capcurriculum.schema.images import ImageChecker, ImageChecks
from vlm_capcurriculum.schema.issues import (
    DataFileError,
    ReadReport,
    RecordIssue,
    RecordValidationError,
    RowLocation,
)
from vlm_capcurriculum.schema.record import SampleRecord

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines")
JSON_SUFFIXES = (".json",)
PARQUET_SUFFIXES = (".parquet",)
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES


class _InvalidJSON:
    """A JSONL line that does not parse; kept as a row so it is reported, not skipped."""

    def __init__(self, error: json.JSONDecodeError) -> None:
        self.error = error


@dataclass
class ReadResult:
    """The records that passed validation, in file order, where each came from, and the report of the read."""

    records: list[SampleRecord] = field(default_factory=list)
    locations: list[RowLocation] = field(default_factory=list)
    report: ReadReport = field(default_factory=ReadReport)


def _iter_json_lines(path: Path, text: str) -> Iterator[tuple[RowLocation, Any]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue  # a blank line is not a row
        try:
            yield RowLocation(path, line=number), json.loads(line)
        except json.JSONDecodeError as err:
            yield RowLocation(path, line=number), _InvalidJSON(err)


def iter_rows(path: str | os.PathLike[str]) -> Iterator[tuple[RowLocation, Any]]:
    """Every row of a data file with its location. Raises :class:`DataFileError` for an unusable file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DataFileError(
            f"{path}: unsupported file type {suffix!r}; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    if suffix in PARQUET_SUFFIXES:
        yield from _iter_parquet(path)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DataFileError(f"{path}: cannot read: {err}") from err
    head = text.lstrip()[:1]
    if suffix in JSON_SUFFIXES and head == "[":
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}: invalid JSON array at line {err.lineno}: {err.msg}") from err
        for index, row in enumerate(rows):
            yield RowLocation(path, row=index), row
        return
    if suffix in JSON_SUFFIXES and head == "{":
        try:
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None  # several objects: JSON lines
        if isinstance(whole, dict) and "\n" in text.strip():
            raise DataFileError(f"{path}: a single JSON object; expected an array of rows or one row per line")
    yield from _iter_json_lines(path, text)


def _iter_parquet(path: Path) -> Iterator[tuple[RowLocation, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as err:
        raise DataFileError(f"{path}: cannot read parquet: {err}") from err
    index = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for row in batch.to_pylist():
            yield RowLocation(path, row=index), row
            index += 1


def _prefetched(
    rows: Iterator[tuple[RowLocation, Any]], checker: ImageChecker | None, root: Path, batch: int = 256
) -> Iterator[tuple[RowLocation, Any]]:
    """``rows`` unchanged, with each batch's images checked in parallel before its rows are validated."""
    if checker is None or not checker.decoding:
        yield from rows
        return
    while chunk := list(itertools.islice(rows, batch)):
        checker.prefetch((image, root) for _, row in chunk for image in image_paths(row))
        yield from chunk


def read_records(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    image_root: str | os.PathLike[str] | None = None,
    capability: str | None = None,
    strict: bool = True,
    check_images: bool = True,
    image_checks: ImageChecks | None = None,
) -> ReadResult:
    """Read and validate the rows of one or more files, in the order given; ids must be unique across ``paths``.
    ``image_root`` None: each data file's own directory; ``capability``: that of rows that carry none."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    result = ReadResult()
    report = result.report
    unique = UniqueRecords()
    checker = ImageChecker(image_checks)
    for raw_path in paths:
        path = Path(raw_path)
        root = (Path(image_root) if image_root is not None else path.parent).absolute()
        for location, row in _prefetched(iter_rows(path), checker if check_images else None, root):
            report.rows_read += 1
            if isinstance(row, _InvalidJSON):
                report.issues.append(
                    RecordIssue(
                        location, "<json>", "invalid_json", f"invalid JSON: {row.error.msg} (column {row.error.colno})"
                    )
                )
                continue
            row_notes: Counter[str] = Counter()
            outcome = unique.add(
                row,
                location,
                image_root=root,
                default_capability=capability,
                check_images=check_images,
                notes=row_notes,
                image_checker=checker,
            )
            if isinstance(outcome, list):
                report.issues.extend(outcome)
                continue
            result.records.append(outcome)
            result.locations.append(location)
            report.rows_kept += 1
            report.notes.update(row_notes)
    if strict and report.issues:
        raise RecordValidationError(report.issues, report)
    return result
