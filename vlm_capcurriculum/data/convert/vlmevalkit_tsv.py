"""VLMEvalKit's benchmark TSV files (``~/LMUData/<dataset>.tsv``) -> records, for ``vlmcc eval``'s built-in backend.

Read as VLMEvalKit reads them (``vlmeval/dataset/image_base.py``, ``image_mcq.py``): ``index``, ``image`` (base64, a
Python list string of several, or the ``index`` of a row whose image it shares: 64 characters or fewer) or
``image_path``, ``question``, ``hint``, options ``A`` ... ``J``, ``answer``, ``category``; asked as VLMEvalKit asks.
Rows with options become ``choice`` answers, Yes/No ones ``yesno``, numbers ``number``; other free-form answers have
per-benchmark rules in VLMEvalKit and are reported, not guessed. ``source`` is the file's stem, ids
``<source>:<index>``.
"""

from __future__ import annotations

import ast
import base64
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.convert.base import Converted, ImageSink, Problems, Source, options_block
from vlm_capcurriculum.schema import RowLocation

_LETTERS = "ABCDEFGHIJ"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_MAX_FIELD = 2**31 - 1  # base64 images are far larger than csv's default 128 KiB field limit


def rows(path: Path) -> Iterator[tuple[RowLocation, Any]]:
    """The TSV's rows by line, with an image given as another row's index replaced by that row's image."""
    csv.field_size_limit(_MAX_FIELD)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        table = [(reader.line_num, row) for row in reader]
    images = {str(row.get("index")): row.get("image") for _, row in table if len(row.get("image") or "") > 64}
    for line, row in table:
        image = row.get("image") or ""
        if 0 < len(image) <= 64 and image in images:
            row = {**row, "image": images[image]}
        yield RowLocation(path, line=line), {**row, "_source": path.stem}


def _images(row: dict[str, Any], sink: ImageSink, problems: Problems) -> list[str]:
    if row.get("image"):
        value = row["image"].strip()
        encoded = ast.literal_eval(value) if value.startswith("[") else [value]
        paths = []
        for number, item in enumerate(encoded):
            try:
                paths.append(sink.store(base64.b64decode(item, validate=True)))
            except ValueError as err:  # binascii.Error, or bytes that are no image
                problems.append(("image", f"image {number}: not base64 image data ({err})"))
        return paths
    if row.get("image_path"):
        value = row["image_path"].strip()
        return [str(p) for p in ast.literal_eval(value)] if value.startswith("[") else [value]
    problems.append(("image", "missing (no image or image_path)"))
    return []


def convert_row(location: RowLocation, row: Any, sink: ImageSink) -> Converted:
    problems: Problems = []
    index, question, answer = (str(row.get(name) or "").strip() for name in ("index", "question", "answer"))
    for name, value in (("index", index), ("question", question), ("answer", answer)):
        if not value:
            problems.append((name, "missing"))
    try:
        images = _images(row, sink, problems)
    except (ValueError, SyntaxError) as err:
        return [("image", f"unreadable image list ({err})")]
    if problems:
        return problems
    choices = {letter: row[letter].strip() for letter in _LETTERS if (row.get(letter) or "").strip()}
    hint = (row.get("hint") or "").strip()
    text = (f"Hint: {hint}\n" if hint else "") + f"Question: {question}"
    if choices:
        text += "\n" + options_block(choices)
        if answer not in choices:
            return [("answer", f"{answer!r} is not one of the options {sorted(choices)}")]
        answer_type = "choice"
    elif answer.lower() in ("yes", "no"):
        answer_type, answer = "yesno", answer.capitalize()
    elif _NUMBER.match(answer):
        answer_type = "number"
    else:
        return [("answer", f"free-form answer {answer[:40]!r}: its grading rule is benchmark-specific; not converted")]
    source = str(row.get("_source"))
    converted = {
        "id": f"{source}:{index}",
        "problem": "<image>" * len(images) + text,
        "images": images,
        "answer": answer,
        "answer_type": answer_type,
        "source": source,
    }
    if choices:
        converted["choices"] = choices
    if (row.get("category") or "").strip():
        converted["category"] = row["category"].strip()
    return converted


SOURCE = Source("vlmevalkit", "unlabelled", convert_row, rows)
