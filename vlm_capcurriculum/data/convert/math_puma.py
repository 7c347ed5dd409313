"""Math-PUMA (``Math-PUMA/Math-PUMA_Data_Stage2`` / ``Stage3``): multimodal maths problems with worked solutions.

Columns as the authors' ``train/qwen2/dataset.py`` reads them: ``image_url`` (a local path; empty for text-only rows),
``instruction``, ``output``; the ``_2`` twins (the same problem in another modality) are not converted. NOT
CONFIRMED: the final answer is taken from the solution by the rewards' extractor; a row without one is reported.
"""

from __future__ import annotations

from typing import Any

from vlm_capcurriculum.data.convert.base import (
    Converted,
    ImageSink,
    Problems,
    Source,
    image_path,
    leading_image,
    row_index,
    text_field,
)
from vlm_capcurriculum.rewards import extract_answer
from vlm_capcurriculum.schema import RowLocation


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    problems: Problems = []
    instruction = text_field(row, "instruction", problems)
    output = text_field(row, "output", problems)
    raw_image = row.get("image_url")
    image = image_path(raw_image, sink, "image_url", problems) if raw_image not in (None, "") else None
    if problems or instruction is None or output is None:
        return problems
    answer = extract_answer(output, "math", extraction="lenient")
    if not answer:
        return [("output", "the solution states no final answer (no \\boxed{} or 'the answer is')")]
    return {
        "id": f"math_puma:{row_index(location)}",
        "problem": leading_image(instruction.strip()) if image else instruction.strip(),
        "images": [image] if image else [],
        "answer": answer,
        "answer_type": "math",
        "source": "math_puma",
    }


SOURCE = Source("math_puma", "visual_reasoning", convert_row)
