"""Pipeline inputs with their file locations, and the rows that cannot be used: each becomes a ``bad_input`` reject
naming its file, line (or row) and the fields at fault, in input order. Nothing is dropped silently, and one bad row
never stops a run of 15K.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.jobs import Process, Reject, RowResult
from vlm_capcurriculum.data.runner import Runner
from vlm_capcurriculum.schema import RowLocation, SampleRecord, read_records

BAD_INPUT = "bad_input"


@dataclass(frozen=True)
class BadRow:
    """An input row that cannot be used: where it is and each ``(field, message)`` wrong with it."""

    location: RowLocation
    problems: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:  # the job-row id: unique, and not an id a dataset would use
        return f"bad-input@{self.location}"

    def reject(self) -> Reject:
        return Reject(
            BAD_INPUT,
            {
                "id": self.id,
                "location": str(self.location),
                "problems": [{"field": field, "message": message} for field, message in self.problems],
            },
        )


def record_rows(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    image_root: str | os.PathLike[str] | None,
    capability: str | None = None,
    check_images: bool = True,
) -> list[dict[str, Any]]:
    """Job rows for pipelines over sample records, in input order: ``{"id", "record": SampleRecord}`` for each valid
    row and ``{"id", "bad": BadRow}`` for each row :func:`~vlm_capcurriculum.schema.read_records` rejects."""
    path_list = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    result = read_records(
        path_list, image_root=image_root, capability=capability, strict=False, check_images=check_images
    )
    problems: dict[RowLocation, list[tuple[str, str]]] = defaultdict(list)
    for issue in result.report.issues:
        problems[issue.location].append((issue.field, issue.message))
    entries: list[tuple[RowLocation, dict[str, Any]]] = [
        (location, {"id": record.id, "record": record})
        for record, location in zip(result.records, result.locations, strict=True)
    ]
    bad_rows = [BadRow(location, tuple(found)) for location, found in problems.items()]
    entries += [(bad.location, {"id": bad.id, "bad": bad}) for bad in bad_rows]
    file_index = {str(path): i for i, path in enumerate(path_list)}

    def order(location: RowLocation) -> tuple[int, int]:  # by file (as listed), then line or row
        position = location.line if location.line is not None else location.row
        return file_index.get(str(location.path), len(file_index)), position or 0

    entries.sort(key=lambda entry: order(entry[0]))
    return [row for _, row in entries]


def over_records(handle: Callable[[SampleRecord, Runner], Awaitable[RowResult]]) -> Process:
    """The job ``process`` for rows of :func:`record_rows`: a bad row is rejected with its problems before ``handle``
    sees a record."""

    async def process(row: Mapping[str, Any], runner: Runner) -> RowResult:
        bad = row.get("bad")
        if isinstance(bad, BadRow):
            return bad.reject()
        return await handle(row["record"], runner)

    return process
