"""Sample records (our interchange format) as the parquet files verl's ``RLHFDataset`` reads (columns:
``docs/integrations/verl.md``, "Writer"). Bad records are all reported, by position, id and field, and nothing is
written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vlm_capcurriculum.prompts import THINK_BOXED, read_prompt, render_prompt
from vlm_capcurriculum.schema.record import CORE_FIELDS, RecordError, SampleRecord

REQUIRED_FIELDS = ("id", "capability", "problem", "answer", "answer_type")

_EXTRA_INFO = pa.struct(
    [
        ("index", pa.int64()),
        ("id", pa.string()),
        ("capability", pa.string()),
        ("answer_type", pa.string()),
        ("choices", pa.list_(pa.struct([("letter", pa.string()), ("text", pa.string())]))),
        ("source", pa.string()),
        ("pass_rate", pa.float64()),
        ("question", pa.string()),
    ]
)


def verl_schema(embed_images: bool = True) -> pa.Schema:
    """The parquet schema :func:`write_verl_parquet` writes."""
    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())]) if embed_images else pa.string()
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("images", pa.list_(image)),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", _EXTRA_INFO),
        ]
    )


class VerlDataError(ValueError):
    """Records that cannot be written; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} bad record(s):\n  {shown}{more}")


def _sample(record: Mapping[str, Any], image_root: Path) -> tuple[SampleRecord | None, list[str]]:
    """The record as a :class:`SampleRecord` (whose checks name the field), or its problems."""
    missing = [f"missing field {name!r}" for name in REQUIRED_FIELDS if record.get(name) in (None, "")]
    if missing:
        return None, missing
    fields = {name: record[name] for name in CORE_FIELDS if record.get(name) is not None}
    try:
        sample = SampleRecord(**{**fields, "id": str(fields["id"]), "answer": str(fields["answer"])})
    except RecordError as error:
        return None, [f"{error.field}: {error}"]
    except (TypeError, ValueError):  # dict() of a non-mapping
        return None, ["choices: must map letters to texts"]
    missing_images = [str(image_root / path) for path in sample.images if not (image_root / path).is_file()]
    return sample, [f"image not found: {path}" for path in missing_images]


def _row(sample: SampleRecord, index: int, image_root: Path, embed: bool, template: str | None) -> dict:
    spec = sample.answer_spec()
    content = sample.problem if template is None else render_prompt(sample.problem, template)
    return {
        "data_source": spec.capability,
        "prompt": [{"role": "user", "content": content}],
        "images": [
            {"bytes": (image_root / path).read_bytes(), "path": path} if embed else os.fspath((image_root / path).resolve())
            for path in sample.images
        ],
        "ability": spec.capability,
        "reward_model": {"style": "rule", "ground_truth": spec.to_ground_truth()},
        "extra_info": {
            "index": index,
            "id": sample.id,
            "capability": spec.capability,
            "answer_type": spec.type,
            "choices": [{"letter": letter, "text": text} for letter, text in sorted(spec.choices.items())],
            "source": str(sample.source),
            "pass_rate": sample.pass_rate,
            "question": sample.problem,
        },
    }


def write_verl_parquet(
    records: Iterable[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] = ".",
    embed_images: bool = True,
    format_prompt: str | os.PathLike[str] | None = THINK_BOXED,
    origin: str = "records",
) -> int:
    """Write ``records`` (dicts with the ARCHITECTURE.md fields) to ``path`` in verl's RLHF parquet format, atomically,
    in input order, each problem rendered in ``format_prompt`` (``None``: as is); ``origin`` names the input in
    error messages. Returns the rows written."""
    root = Path(image_root)
    template = None if format_prompt is None else read_prompt(format_prompt)
    rows: list[dict] = []
    bad: list[str] = []
    seen: dict[str, int] = {}
    for position, record in enumerate(records):
        sample, problems = _sample(record, root)
        record_id = record.get("id")
        if record_id is not None and str(record_id) in seen:
            problems.append(f"duplicate id (first at record {seen[str(record_id)]})")
        if problems:
            bad.append(f"{origin} record {position} (id={record_id!r}): " + "; ".join(problems))
            continue
        seen[str(record_id)] = position
        rows.append(_row(sample, len(rows), root, embed_images, template))
    if bad or not rows:
        raise VerlDataError(bad or [f"{origin}: no records to write"])
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=verl_schema(embed_images))
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)
    return len(rows)
