"""Verifiable rewards for the capability curriculum.

``score(response, ground_truth)`` / ``score_batch(...)`` give ``{"overall", "accuracy", "format"}`` for the paper's
output format ``<think> reasoning </think> \\boxed{answer}`` (overall = 0.9 accuracy + 0.1 format);
``verify(answer, ground_truth)`` grades a bare final answer; ``extract_answer(response)`` finds the final answer.
The ground truth is a string or :class:`AnswerSpec` (a letter A-J is a ``choice`` answer, a JSON object carries its
own type). Framework entry points: ``reward_fns/capcurriculum.py`` (EasyR1) and
:mod:`vlm_capcurriculum.integrations.verl.reward` (verl).
"""

from vlm_capcurriculum.rewards.bounds import DEFAULT_TIMEOUT_S
from vlm_capcurriculum.rewards.extract import Extraction, extract, extract_answer
from vlm_capcurriculum.rewards.format import format_ok, format_score
from vlm_capcurriculum.rewards.guard import guard_stats, reset_guard_stats, shutdown_pool
from vlm_capcurriculum.rewards.scoring import (
    PAPER_FORMAT_WEIGHT,
    score,
    score_batch,
    to_spec,
    verify,
    verify_batch,
)
from vlm_capcurriculum.schema.answer import ANSWER_TYPES, AnswerSpec, AnswerSpecError, AnswerType

__all__ = [
    "ANSWER_TYPES",
    "DEFAULT_TIMEOUT_S",
    "PAPER_FORMAT_WEIGHT",
    "AnswerSpec",
    "AnswerSpecError",
    "AnswerType",
    "Extraction",
    "extract",
    "extract_answer",
    "format_ok",
    "format_score",
    "guard_stats",
    "reset_guard_stats",
    "score",
    "score_batch",
    "shutdown_pool",
    "to_spec",
    "verify",
    "verify_batch",
]
