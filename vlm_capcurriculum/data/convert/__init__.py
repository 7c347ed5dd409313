"""Readers that turn the paper's source datasets into sample records (our schema), one module per source (``SOURCES``;
formats in ``data_recipes/README.md``).

``convert`` maps every row to our columns with the source's reader, validates it with the schema's own row checker
(placeholders match images, images exist, answer types and options agree), writes the good records atomically and
every problem of a bad row to ``OUTPUT.issues.jsonl`` by file, line (or row) and field: nothing is dropped without
a line there and a count in the summary.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.convert import (
    arxivqa,
    clevr_math,
    docvqa,
    geoqa,
    math_puma,
    orz,
    released,
    vlmevalkit_tsv,
)
from vlm_capcurriculum.data.convert.base import ImageSink, Source
from vlm_capcurriculum.data.io import AtomicJsonlWriter
from vlm_capcurriculum.schema import RecordIssue, SampleRecord, iter_rows, write_records
from vlm_capcurriculum.schema.columns import UniqueRecords

SOURCES: dict[str, Source] = {
    module.SOURCE.name: module.SOURCE
    for module in (orz, clevr_math, geoqa, math_puma, docvqa, arxivqa, released, vlmevalkit_tsv)
}


@dataclass
class ConvertSummary:
    rows_read: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # bad rows by the reason of their first problem
    notes: Counter[str] = field(default_factory=Counter)  # normalisations of kept rows
    outputs: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        text = f"wrote {self.written} of {self.rows_read} rows"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{reason} {count}" for reason, count in self.skipped.most_common())
        return text


def convert(
    source: str,
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    image_dir: str | os.PathLike[str] | None = None,
    capability: str | None = None,
    check_images: bool = True,
    limit: int | None = None,
) -> ConvertSummary:
    """Convert ``inputs`` of ``source`` into records at ``output`` (``.jsonl`` or ``.parquet``). ``image_root``: what
    the records' image paths are relative to (default the output's folder); ``image_dir``: where embedded image
    bytes are written (default ``IMAGE_ROOT/images/SOURCE``)."""
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    spec = SOURCES[source]
    output = Path(output)
    if output.suffix.lower() not in (".jsonl", ".ndjson", ".parquet"):
        raise ValueError(f"{output}: write .jsonl or .parquet")
    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    root = Path(image_root) if image_root is not None else output.parent
    sink = ImageSink(
        root.absolute(), Path(image_dir).absolute() if image_dir else (root / "images" / source).absolute()
    )
    summary = ConvertSummary()
    records: list[SampleRecord] = []
    unique = UniqueRecords()
    issues_path = output.with_suffix(".issues.jsonl")
    with AtomicJsonlWriter(issues_path) as bad:

        def report(found: list[RecordIssue]) -> None:
            for issue in found:
                bad.write({**asdict(issue), "location": str(issue.location)})
            summary.skipped[found[0].reason] += 1

        for path in paths:
            stage = (
                capability
                or spec.capability
                or (released.capability_from_name(path) if source == "capcurriculum" else None)
            )
            if not stage:
                raise ValueError(f"{path}: cannot tell the capability from the file name; give one")
            for location, row in (spec.rows or iter_rows)(path):
                if limit is not None and summary.rows_read >= limit:
                    break
                summary.rows_read += 1
                if not isinstance(row, (dict, list)):
                    report([RecordIssue(location, "<row>", "invalid_json", "not valid JSON or not an object")])
                    continue
                if not isinstance(row, spec.row_types):
                    report([RecordIssue(location, "<row>", "bad_type", "not an object")])
                    continue
                converted: Any = spec.convert_row(location, row, sink)
                if isinstance(converted, list):
                    found = [RecordIssue(location, f, _reason(m), m) for f, m in converted]
                    report(found or [RecordIssue(location, "<row>", "bad_type", "cannot be converted")])
                    continue
                notes: Counter[str] = Counter()
                outcome = unique.add(
                    converted, location, image_root=root, default_capability=stage, check_images=check_images, notes=notes
                )
                if isinstance(outcome, list):
                    report(outcome)
                    continue
                records.append(outcome)
                summary.notes.update(notes)
    partial = output.with_name(f".{output.stem}.partial{output.suffix}")
    summary.written = write_records(records, partial)
    partial.replace(output)
    summary.outputs = {"output": str(output), "issues": str(issues_path)}
    return summary


def _reason(message: str) -> Any:
    if message.startswith("missing") or message.startswith("no "):
        return "missing_field"
    if "not found" in message:
        return "image_not_found"
    return "bad_type"


__all__ = ["SOURCES", "ConvertSummary", "convert"]
