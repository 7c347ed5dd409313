"""ArxivQA (``MMInstruction/ArxivQA``, ``arxivqa.jsonl`` + ``images.tgz``): multiple-choice questions on figures.

Rows: ``id``, ``image`` (relative to the unpacked archive), ``question``, ``options`` (usually with their own
letters, ``"A. ..."`` or ``"(A) ..."``; lettered in order otherwise), ``label`` (``"B"``, ``"B)"``, ``"(B) text"``)
and ``rationale``. A label naming no listed option is reported.
"""

from __future__ import annotations

import re
from typing import Any

from vlm_capcurriculum.data.convert.base import (
    Converted,
    ImageSink,
    Problems,
    Source,
    image_path,
    options_block,
    split_options,
    text_field,
)
from vlm_capcurriculum.schema import RowLocation

_LABEL = re.compile(r"^\s*\(?\s*([A-J])\s*(?:[.):]|$|\s)")


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    problems: Problems = []
    rid = text_field(row, "id", problems)
    question = text_field(row, "question", problems)
    label = text_field(row, "label", problems)
    options = row.get("options")
    choices = split_options(options, "options", problems) if isinstance(options, list) else None
    if not isinstance(options, list):
        problems.append(("options", f"must be a list of option strings, got {type(options).__name__}"))
    image = image_path(row.get("image"), sink, "image", problems)
    if problems or choices is None or label is None:
        return problems
    match = _LABEL.match(label)
    letter = match.group(1) if match else next((k for k, v in choices.items() if v == label.strip()), None)
    if letter is None or letter not in choices:
        return [("label", f"{label!r} names none of the options {sorted(choices)}")]
    return {
        "id": f"arxivqa:{rid}",
        "problem": f"<image>{question.strip()}\n{options_block(choices)}",
        "images": [image],
        "answer": letter,
        "answer_type": "choice",
        "choices": choices,
        "source": "arxivqa",
        **({"rationale": row["rationale"]} if isinstance(row.get("rationale"), str) else {}),
    }


SOURCE = Source("arxivqa", "visual_reasoning", convert_row)
