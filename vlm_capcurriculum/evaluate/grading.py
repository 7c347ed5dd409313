"""The one call from evaluation into the verifiers.

Evaluation grades in *lenient* extraction: the reward's whole fallback chain (last box in the answer, then a box in
the reasoning, a closing phrase, the last number or option) so a checkpoint is scored on what it answered, not on
whether it kept the training format (the paper's benchmarks are graded the same way by VLMEvalKit's extractor).
When the rewards offer an explicit extraction mode (``score_batch(..., extraction="lenient")``), it is asked for by
name; otherwise their default is the lenient chain. Nothing else in :mod:`vlm_capcurriculum.evaluate` calls the
rewards, so a change of their API is one edit here.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

GRADING = "our verifiers (vlm_capcurriculum.rewards), lenient extraction"


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool


@lru_cache(maxsize=1)
def _mode_options() -> dict[str, str]:
    from vlm_capcurriculum.rewards import score_batch

    return {"extraction": "lenient"} if "extraction" in inspect.signature(score_batch).parameters else {}


def _extract(response: str, answer_type: str) -> str | None:
    from vlm_capcurriculum.rewards import extract_answer

    if "extraction" in inspect.signature(extract_answer).parameters:
        return extract_answer(response, answer_type, extraction="lenient")  # type: ignore[call-arg]
    return extract_answer(response, answer_type)


def grade(responses: Sequence[str], ground_truths: Sequence[str], answer_types: Sequence[str]) -> list[Grade]:
    """Each response's extracted final answer and whether our verifiers accept it (lenient extraction)."""
    from vlm_capcurriculum.rewards import score_batch

    scores = score_batch(list(responses), list(ground_truths), **_mode_options())
    return [
        Grade(_extract(response, answer_type), score["accuracy"] == 1.0)
        for response, score, answer_type in zip(responses, scores, answer_types, strict=True)
    ]
