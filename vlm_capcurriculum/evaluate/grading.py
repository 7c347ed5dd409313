"""The one call from evaluation (``vlmcc eval``, pass@K) into the verifiers, in *lenient* extraction: a checkpoint
is scored on what it answered, not on whether it kept the training format (VLMEvalKit grades the paper's benchmarks
the same way); training keeps the paper's last-box default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GRADING = "our verifiers (vlm_capcurriculum.rewards), lenient extraction"
EXTRACTION = "lenient"


@dataclass(frozen=True)
class Grade:
    extracted: str | None
    correct: bool


def grade(responses: Sequence[str], ground_truths: Sequence[str], answer_types: Sequence[str]) -> list[Grade]:
    """Each response's extracted final answer and whether our verifiers accept it (lenient extraction)."""
    from vlm_capcurriculum.rewards import extract_answer, score_batch

    scores = score_batch(list(responses), list(ground_truths), extraction=EXTRACTION)
    return [
        Grade(extract_answer(response, answer_type, extraction=EXTRACTION), score["accuracy"] == 1.0)
        for response, score, answer_type in zip(responses, scores, answer_types, strict=True)
    ]
