"""The reward: accuracy of the final answer plus the paper's format bonus, for one response or a batch.

``overall = (1 - format_weight) * accuracy + format_weight * format``, the paper's 0.9/0.1 split
(``training/reward_functions/math.py``). Answers the exact verifiers cannot settle go, all at once, to the guarded
worker pool (:mod:`~vlm_capcurriculum.rewards.guard`); identical (answer, gold) pairs of a batch are decided once.
Nothing a model writes and no bad ground truth raises (a bad ground truth scores 0, is counted in ``guard_stats()``
and warned about once per kind); only programming errors do (batch lengths, format weight, extraction mode).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from vlm_capcurriculum.rewards.bounds import CACHE_SIZE, DEFAULT_TIMEOUT_S, MAX_ANSWER_CHARS, MAX_RESPONSE_CHARS
from vlm_capcurriculum.rewards.extract import (
    Extraction,
    ExtractionMode,
    check_extraction,
    extract,
    find_boxes,
    strip_wrappers,
)
from vlm_capcurriculum.rewards.format import format_score
from vlm_capcurriculum.rewards.guard import count, get_pool
from vlm_capcurriculum.rewards.verifiers import EXACT_VERIFIERS
from vlm_capcurriculum.schema.answer import ANSWER_TYPES, AnswerSpec, AnswerSpecError

logger = logging.getLogger(__name__)

GroundTruth = str | int | float | Sequence[Any] | Mapping[str, Any] | AnswerSpec | None

#: The paper's format weight (overall = 0.9 * accuracy + 0.1 * format).
PAPER_FORMAT_WEIGHT = 0.1

_warned_kinds: set[str] = set()


@lru_cache(maxsize=CACHE_SIZE)
def _spec_from_string(ground_truth: str) -> AnswerSpec | AnswerSpecError:
    try:
        return AnswerSpec.parse(ground_truth)
    except AnswerSpecError as error:
        return error


def to_spec(ground_truth: object) -> AnswerSpec | None:
    """The answer spec of a ground truth in any accepted encoding, or None (counted, warned once per kind) when it
    is missing or malformed: such a sample scores 0 whatever the response says."""
    try:
        spec = _spec_from_string(ground_truth) if isinstance(ground_truth, str) else AnswerSpec.parse(ground_truth)  # type: ignore[arg-type]
    except AnswerSpecError as error:
        spec = error
    except Exception as error:  # an odd object (a mapping with unhashable values...) must not reach the trainer
        spec = AnswerSpecError(f"{type(error).__name__}: {error}", "bad_spec")
    if isinstance(spec, AnswerSpecError):
        count("invalid_ground_truth")
        count(f"invalid_ground_truth_{spec.kind}")
        if spec.kind not in _warned_kinds:
            _warned_kinds.add(spec.kind)
            logger.warning(
                "invalid ground truth %r scores 0 (%s; further ground truths of this kind are only counted in "
                "guard_stats()['invalid_ground_truth_%s']): %s",
                str(ground_truth)[:200],
                spec.kind,
                spec.kind,
                spec,
            )
        return None
    return spec


def candidates(found: Extraction | None, answer_type: str) -> list[str]:
    """The answer strings to grade: the extracted answer (the last box, as in the paper's reward) and, for maths, all
    the boxes joined (``\\boxed{1}, \\boxed{2}`` answers ``1, 2``: it can only match a gold list of those parts)."""
    if found is None:
        return []
    if answer_type == "math" and len(found.boxes) > 1:
        joined = ", ".join(found.boxes)
        if joined != found.answer:
            return [found.answer, joined]
    return [found.answer]


def _exact(answer: str, spec: AnswerSpec) -> bool | None:
    if len(answer) > MAX_ANSWER_CHARS:  # too long to be parsed: only the gold string itself counts
        return answer.strip() == spec.answer.strip()
    try:
        return EXACT_VERIFIERS[spec.type](answer, spec)
    except Exception:  # a verifier bug must not reach the trainer; it is logged and counted
        logger.exception("verifier %s failed on an answer; it scores 0", spec.type)
        count("errors")
        return False


def grade(answer_lists: Sequence[Sequence[str]], specs: Sequence[AnswerSpec | None], timeout_s: float) -> list[bool]:
    results = [False] * len(specs)
    waiting: dict[tuple[str, str], list[int]] = {}
    exact: dict[tuple, bool | None] = {}  # rollouts of one prompt often give the same answer: decide it once
    for index, (answers, spec) in enumerate(zip(answer_lists, specs, strict=True)):
        if spec is None:
            continue
        undecided = []
        for answer in answers:
            key = (answer, spec.type, spec.answer, tuple(sorted(spec.choices.items())))
            if key not in exact:
                exact[key] = _exact(answer, spec)
            verdict = exact[key]
            if verdict:
                results[index] = True
                break
            if verdict is None:
                undecided.append(answer)
        else:
            for answer in undecided:
                waiting.setdefault((answer, spec.answer), []).append(index)
    if waiting:
        keys = list(waiting)
        outcomes = get_pool().run([("equivalent", key) for key in keys], timeout_s)
        for key, outcome in zip(keys, outcomes, strict=True):
            if outcome.status == "ok" and outcome.value is True:
                for index in waiting[key]:
                    results[index] = True
    return results


def type_key(answer_type: str) -> str:
    return f"accuracy_{answer_type}"


def capability_key(capability: str) -> str:
    """The per-capability accuracy key: ``accuracy_<capability>`` (``accuracy_capability_<capability>`` when the
    capability is named like an answer type, so the two never collide)."""
    return ("accuracy_capability_" if capability in ANSWER_TYPES else "accuracy_") + capability


def score_batch(
    responses: Sequence[str],
    ground_truths: Sequence[GroundTruth],
    *,
    format_weight: float = PAPER_FORMAT_WEIGHT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    breakdown: bool = False,
    extraction: ExtractionMode = "paper",
) -> list[dict[str, float]]:
    """``overall``, ``accuracy`` and ``format`` per response; ``breakdown=True`` adds this sample's
    ``accuracy_<answer type>`` and ``accuracy_<capability>`` (EasyR1 averages each key over the samples that have
    it; verl needs the same keys on every sample). ``extraction``: see :mod:`~vlm_capcurriculum.rewards.extract`."""
    check_extraction(extraction)
    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    specs = [to_spec(ground_truth) for ground_truth in ground_truths]
    formats: list[float] = []
    answer_lists: list[list[str]] = []
    for response, spec in zip(responses, specs, strict=True):
        response = response if isinstance(response, str) else ""
        formats.append(format_score(response))
        if spec is None:
            answer_lists.append([])
        elif len(response) > MAX_RESPONSE_CHARS:
            count("oversize")
            answer_lists.append([])
        else:
            answer_lists.append(candidates(extract(response, spec.type, extraction=extraction), spec.type))
    accuracies = grade(answer_lists, specs, timeout_s)
    scores = []
    for spec, correct, format_value in zip(specs, accuracies, formats, strict=True):
        accuracy = 1.0 if correct else 0.0
        result = {
            "overall": (1.0 - format_weight) * accuracy + format_weight * format_value,
            "accuracy": accuracy,
            "format": format_value,
        }
        if breakdown and spec is not None:
            result[type_key(spec.type)] = accuracy
            if spec.capability:
                result[capability_key(spec.capability)] = accuracy
        scores.append(result)
    return scores


def score(
    response: str,
    ground_truth: GroundTruth,
    *,
    format_weight: float = PAPER_FORMAT_WEIGHT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    breakdown: bool = False,
    extraction: ExtractionMode = "paper",
) -> dict[str, float]:
    """Score one response against its ground truth (see :func:`score_batch`)."""
    return score_batch(
        [response],
        [ground_truth],
        format_weight=format_weight,
        timeout_s=timeout_s,
        breakdown=breakdown,
        extraction=extraction,
    )[0]


def _bare_candidates(answer: str, answer_type: str) -> list[str]:
    boxes = find_boxes(answer)
    if boxes:
        return candidates(Extraction(boxes[-1], "boxed", tuple(boxes)), answer_type)
    stripped = strip_wrappers(answer)
    return [stripped] if stripped else []


def verify_batch(
    answers: Sequence[str], ground_truths: Sequence[GroundTruth], *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[bool]:
    """Grade bare final answers (no reasoning, no extraction chain; a box in an answer is unwrapped)."""
    if len(answers) != len(ground_truths):
        raise ValueError(f"{len(answers)} answers but {len(ground_truths)} ground truths")
    specs = [to_spec(ground_truth) for ground_truth in ground_truths]
    answer_lists = [
        _bare_candidates(answer, spec.type)
        if spec is not None and isinstance(answer, str) and len(answer) <= MAX_RESPONSE_CHARS
        else []
        for answer, spec in zip(answers, specs, strict=True)
    ]
    return grade(answer_lists, specs, timeout_s)


def verify(answer: str, ground_truth: GroundTruth, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Whether a bare final answer (``"B"``, ``"(B) blue"``, ``"\\frac{1}{2}"``) is equivalent to the ground truth
    (data pipelines grade filter-model answers with this)."""
    return verify_batch([answer], [ground_truth], timeout_s=timeout_s)[0]
