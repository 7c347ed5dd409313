"""GeoQA170K (G-LLaVA's ``Luckyjhg/Geo170K``, split ``qa_tuning``): geometry questions with options.

``image`` (relative to the release's ``images/``) and ``conversations`` (human question with ``Choices:`` lines, gpt
solution). How a solution states its answer is NOT CONFIRMED: the last ``Answer: X`` / ``the answer is X`` letter
(a ``choice`` answer), else the rewards' extractor (``\\boxed{}``, a ``math`` answer); a row with neither is reported.
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
    leading_image,
    row_index,
    speaker,
    turns,
    utterance,
)
from vlm_capcurriculum.rewards import extract_answer
from vlm_capcurriculum.schema import RowLocation

_CHOICE_LINE = re.compile(r"^\s*\(?([A-H])\)?\s*[:：.]\s*(.+?)\s*$", re.MULTILINE)
_FINAL_LETTER = re.compile(r"(?:answer\s*(?:is|:|：)\s*(?:option\s*)?\(?([A-H])\)?(?![A-Za-z]))", re.IGNORECASE)


def parse_choices(question: str) -> dict[str, str]:
    """The options listed after ``Choices:`` (or ``Options:``), letter -> text."""
    marker = re.search(r"(?:choices|options)\s*[:：]", question, re.IGNORECASE)
    if marker is None:
        return {}
    found = dict(_CHOICE_LINE.findall(question[marker.end() :]))
    return found if len(found) >= 2 else {}


def final_answer(solution: str, choices: dict[str, str]) -> tuple[str, str] | None:
    """``(answer, answer_type)`` stated by a solution, or None."""
    letters = _FINAL_LETTER.findall(solution)
    if letters and (not choices or letters[-1].upper() in choices):
        return letters[-1].upper(), "choice"
    value = extract_answer(solution, "math", extraction="lenient")
    if value:
        return value, "math"
    return None


def convert_row(location: RowLocation, row: dict[str, Any], sink: ImageSink) -> Converted:
    problems: Problems = []
    conversation = turns(row.get("conversations"), "conversations", problems)
    image = image_path(row.get("image"), sink, "image", problems)
    if conversation is None:
        return problems
    human = next((utterance(t) for t in conversation if speaker(t) in ("human", "user")), None)
    solution = next((utterance(t) for t in reversed(conversation) if speaker(t) in ("gpt", "assistant")), None)
    if not isinstance(human, str) or not human.strip():
        problems.append(("conversations", "no human turn with the question"))
    if not isinstance(solution, str) or not solution.strip():
        problems.append(("conversations", "no gpt turn with the solution"))
    if problems or not isinstance(human, str) or not isinstance(solution, str):
        return problems
    choices = parse_choices(human)
    found = final_answer(solution, choices)
    if found is None:
        return [("conversations", "the gpt turn states no final answer (no 'Answer: X', no \\boxed{})")]
    answer, answer_type = found
    return {
        "id": f"geoqa170k:{row_index(location)}",
        "problem": leading_image(human.strip()),
        "images": [image],
        "answer": answer,
        "answer_type": answer_type,
        "choices": choices if answer_type == "choice" else {},
        "source": "geoqa170k",
    }


SOURCE = Source("geoqa170k", "visual_reasoning", convert_row)
