"""The project's rewards as TRL reward functions: ``[accuracy_reward, format_reward]`` weighted by
:func:`reward_weights` makes TRL's ``reward`` the paper's ``overall = 0.9 * accuracy + 0.1 * format``
(``training/reward_functions/math.py``) while TRL logs both parts. Nothing here raises on model output or a bad
ground truth.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vlm_capcurriculum.rewards import (
    DEFAULT_TIMEOUT_S,
    PAPER_FORMAT_WEIGHT,
    AnswerSpec,
    format_score,
    score_batch,
    to_spec,
)
from vlm_capcurriculum.schema.answer import with_columns

logger = logging.getLogger(__name__)

#: Positions in the trainer's ``reward_funcs`` and ``reward_weights``: ``[accuracy_reward, format_reward]``.
ACCURACY, FORMAT = 0, 1
#: What ``train.reward`` and a stage's ``reward`` override may set for these functions.
REWARD_SETTINGS = frozenset({"format_weight", "timeout_s"})


def unknown_reward_settings(settings: Mapping[str, Any]) -> list[str]:
    """Keys of ``settings`` the rewards do not take (a typo would otherwise be ignored silently)."""
    return sorted(set(settings) - REWARD_SETTINGS)


def reward_weights(format_weight: float = PAPER_FORMAT_WEIGHT) -> list[float]:
    """``GRPOConfig.reward_weights`` for ``[accuracy_reward, format_reward]``: ``[1 - w, w]``."""
    if not 0.0 <= format_weight <= 1.0:
        raise ValueError(f"format_weight must be in [0, 1], got {format_weight}")
    return [1.0 - format_weight, format_weight]


def completion_text(completion: Any) -> str:
    """The text of one completion, conversational (a list of messages) or plain."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        message = completion[-1]
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):  # content blocks
            return "".join(block.get("text") or "" for block in content if isinstance(block, dict))
    return ""


def _column(values: Sequence[Any] | None, n: int) -> list[Any]:
    return list(values) if values is not None else [None] * n


def accuracy_reward(
    completions: Sequence[Any],
    ground_truth: Sequence[Any],
    answer_type: Sequence[str] | None = None,
    capability: Sequence[str] | None = None,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    log_metric: Callable[[str, float], None] | None = None,
    **_: Any,
) -> list[float]:
    """1.0 when the completion's final (boxed) answer is equivalent to the ground truth, else 0.0; with a
    ``capability`` column and TRL's ``log_metric``, also logs ``accuracy/<capability>``."""
    n = len(completions)
    types, capabilities = _column(answer_type, n), _column(capability, n)
    specs = [
        with_columns(
            to_spec(gt if isinstance(gt, str | AnswerSpec | dict) else str(gt)), answer_type=kind, capability=cap
        )
        for gt, kind, cap in zip(ground_truth, types, capabilities, strict=True)
    ]
    texts = [completion_text(completion) for completion in completions]
    scored = score_batch(
        texts, [spec if spec is not None else "" for spec in specs], format_weight=0.0, timeout_s=timeout_s
    )
    accuracies = [result["accuracy"] if spec is not None else 0.0 for result, spec in zip(scored, specs, strict=True)]
    if log_metric is not None and capability is not None:
        by_capability: dict[str, list[float]] = defaultdict(list)
        for cap, accuracy in zip(capabilities, accuracies, strict=True):
            by_capability[str(cap)].append(accuracy)
        for cap, values in sorted(by_capability.items()):
            log_metric(f"accuracy/{cap}", sum(values) / len(values))
    return accuracies


def format_reward(completions: Sequence[Any], **_: Any) -> list[float]:
    """1.0 when the completion follows ``<think> reasoning </think> ... \\boxed{answer}`` (the paper's format)."""
    return [format_score(completion_text(completion)) for completion in completions]
