"""CLEVR-Math (``dali-does/clevr-math``): arithmetic word problems over CLEVR scenes, answers are integers.

Rows: ``template``, ``id``, ``question``, ``image`` (``{"bytes", "path"}`` in parquet, a path in a JSON export) and
``label`` (the integer answer).
"""

from __future__ import annotations

from typing import Any

from vlm_capcurriculum.data.convert.base import Converted, ImageSink, Problems, Source, image_path, text_field
from vlm_capcurriculum.schema import RowLocation


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    problems: Problems = []
    question = text_field(row, "question", problems)
    rid = text_field(row, "id", problems)
    label = row.get("label")
    if isinstance(label, float) and label.is_integer():
        label = int(label)
    if not isinstance(label, int) or isinstance(label, bool):
        problems.append(("label", f"must be the integer answer, got {label!r:.60}"))
    image = image_path(row.get("image"), sink, "image", problems)
    if problems:
        return problems
    return {
        "id": f"clevr_math:{rid}",
        "problem": f"<image>{question}",
        "images": [image],
        "answer": str(label),
        "answer_type": "number",
        "source": "clevr_math",
        **({"template": row["template"]} if isinstance(row.get("template"), str) else {}),
    }


SOURCE = Source("clevr_math", "visual_reasoning", convert_row)
