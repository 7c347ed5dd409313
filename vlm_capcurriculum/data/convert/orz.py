"""ORZ-Math-13k (Open-Reasoner-Zero ``data/orz_math_13k_collection_hard.json``): the paper's text-reasoning data.

One JSON array of two-turn lists, ``[{"from": "human", "value": <problem>}, {"from": "assistant", "ground_truth":
{"value": <answer>}}]`` (``datasets.load_dataset("json")`` makes them columns ``"0"`` and ``"1"``; both are read).
The answer type follows the schema's plain-string rule (a single letter is ``choice``, anything else ``math``).
"""

from __future__ import annotations

from typing import Any

from vlm_capcurriculum.data.convert.base import Converted, ImageSink, Problems, Source, row_index, speaker, turns
from vlm_capcurriculum.schema import RowLocation


def convert_row(location: RowLocation, row: Any, sink: ImageSink) -> Converted:
    problems: Problems = []
    conversation = turns(row, "<row>", problems)
    if conversation is None:
        return problems
    human = next((t for t in conversation if speaker(t) == "human"), None)
    assistant = next((t for t in conversation if speaker(t) == "assistant"), None)
    question = human.get("value") if human else None
    truth = assistant.get("ground_truth") if assistant else None
    answer = truth.get("value") if isinstance(truth, dict) else None
    if not isinstance(question, str) or not question.strip():
        problems.append(("0.value", "no human turn with the problem"))
    if not isinstance(answer, (str, int, float)) or isinstance(answer, bool) or not str(answer).strip():
        problems.append(("1.ground_truth.value", f"no ground-truth answer (got {truth!r:.80})"))
    if problems:
        return problems
    out: dict[str, Any] = {
        "id": f"orz:{row_index(location)}",
        "problem": question,
        "answer": str(answer).strip(),
        "source": "orz_math_13k",
    }
    if isinstance(truth, dict) and truth.get("pass_at_n") is not None:
        out["orz_pass_at_n"] = truth["pass_at_n"]
    return out


SOURCE = Source("orz", "text_reasoning", convert_row, row_types=(dict, list))
