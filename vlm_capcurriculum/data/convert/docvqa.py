"""DocVQA (single-page document VQA): the ``lmms-lab/DocVQA`` parquet or the challenge's JSON (``{"data": [...]}``).

Our answer spec holds one gold answer: the first listed is the ``text`` ground truth (compared after folding case,
spaces and punctuation), all are kept in ``answers``, so this is stricter than DocVQA's ANLS over every answer. The
test split has no answers: its rows are reported.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.convert.base import Converted, ImageSink, Problems, Source, image_path, text_field
from vlm_capcurriculum.schema import DataFileError, RowLocation, iter_rows


def rows(path: Path) -> Iterator[tuple[RowLocation, Any]]:
    """Rows of the challenge JSON (``{"data": [...]}``) or of any file :func:`iter_rows` reads."""
    if path.suffix.lower() == ".json":
        try:
            whole = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataFileError(f"{path}: cannot read DocVQA JSON: {err}") from err
        if isinstance(whole, dict):
            if not isinstance(whole.get("data"), list):
                raise DataFileError(f"{path}: a DocVQA JSON object needs a 'data' list")
            for index, row in enumerate(whole["data"]):
                yield RowLocation(path, row=index), row
            return
    yield from iter_rows(path)


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    problems: Problems = []
    qid = text_field(row, "questionId", problems)
    question = text_field(row, "question", problems)
    answers = row.get("answers")
    if not isinstance(answers, list) or not any(isinstance(a, str) and a.strip() for a in answers):
        problems.append(("answers", "no answer (the test split has none)"))
    image = image_path(row.get("image"), sink, "image", problems)
    if problems or not isinstance(answers, list):
        return problems
    kept = [a.strip() for a in answers if isinstance(a, str) and a.strip()]
    return {
        "id": f"docvqa:{qid}",
        "problem": f"<image>{question}",
        "images": [image],
        "answer": kept[0],
        "answer_type": "text",
        "source": "docvqa",
        "answers": kept,
    }


SOURCE = Source("docvqa", "visual_reasoning", convert_row, rows)
