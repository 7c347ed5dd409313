"""verl's reward entry point (``reward.custom_reward_function.path=pkg://vlm_capcurriculum.integrations.verl.reward``).

verl stacks the first sample's key set over all samples, so every sample returns the same keys: :data:`RESULT_KEYS`,
then per answer type and per capability the accuracy, ``None`` where it does not concern the sample
(``docs/integrations/verl.md``, "Reward").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from vlm_capcurriculum.rewards import (
    ANSWER_TYPES,
    DEFAULT_TIMEOUT_S,
    PAPER_FORMAT_WEIGHT,
    extract_answer,
    score,
    to_spec,
)
from vlm_capcurriculum.rewards.extract import ExtractionMode, check_extraction
from vlm_capcurriculum.rewards.guard import configure_pool, prestart_pool
from vlm_capcurriculum.rewards.scoring import capability_key, type_key
from vlm_capcurriculum.schema import PAPER_CAPABILITIES
from vlm_capcurriculum.schema.answer import with_columns

logger = logging.getLogger(__name__)

#: Keys of every result, in order, before the breakdown keys (see the module docstring).
RESULT_KEYS = ("score", "acc", "overall", "accuracy", "format", "pred")
#: Keyword arguments verl itself may pass (reward-model routing); accepted and unused.
_FRAMEWORK_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})
_warned_kwargs: set[str] = set()


def _choices(choices: Any) -> dict[str, str]:
    """Options from ``extra_info``: a mapping letter -> text (a parquet struct gives every row every letter of the
    column, absent ones as None), or a list of ``{"letter", "text"}`` (our verl writer's column)."""
    if isinstance(choices, Mapping):
        return {str(letter).strip().upper(): str(text) for letter, text in choices.items() if text is not None}
    if choices is None or isinstance(choices, (str, bytes)) or not hasattr(choices, "__iter__"):
        return {}
    present = {}
    for option in choices:
        if isinstance(option, Mapping) and option.get("letter") is not None and option.get("text") is not None:
            present[str(option["letter"]).strip().upper()] = str(option["text"])
    return present


def compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    format_weight: float = PAPER_FORMAT_WEIGHT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    workers: int = 1,
    breakdown: bool = True,
    capabilities: Sequence[str] = PAPER_CAPABILITIES,
    extraction: ExtractionMode = "paper",
    **kwargs: Any,
) -> dict[str, float | str | None]:
    """Score one response for verl (``score`` is the reward). ``workers``: guard processes of this reward worker,
    1 because verl already runs ``reward.num_workers`` reward workers side by side; ``breakdown`` adds the per-type
    and per-capability keys; ``extraction``: :mod:`vlm_capcurriculum.rewards.extract`."""
    check_extraction(extraction)
    unknown = set(kwargs) - _FRAMEWORK_KWARGS - _warned_kwargs
    if unknown:
        _warned_kwargs.update(unknown)
        logger.warning("vlm-capcurriculum reward ignores unknown keyword arguments %s", sorted(unknown))
    configure_pool(workers)
    prestart_pool()  # no-op once started; importing this module starts nothing (plugins import it everywhere)
    info = extra_info or {}
    spec = with_columns(  # numbers, lists, None: read exactly as the EasyR1 file reads them
        to_spec(ground_truth),
        answer_type=info.get("answer_type"),
        choices=_choices(info.get("choices")),
        capability=info.get("capability"),
    )
    if spec is None:
        result = {"overall": 0.0, "accuracy": 0.0, "format": 0.0}
        pred = None
    else:
        result = score(solution_str, spec, format_weight=format_weight, timeout_s=timeout_s, extraction=extraction)
        pred = extract_answer(solution_str, spec.type, extraction=extraction) if isinstance(solution_str, str) else None
    scores: dict[str, float | str | None] = {
        "score": result["overall"],
        "acc": result["accuracy"],
        "overall": result["overall"],
        "accuracy": result["accuracy"],
        "format": result["format"],
        "pred": (pred or "")[:1000],
    }
    if breakdown:
        for answer_type in ANSWER_TYPES:
            scores[type_key(answer_type)] = result["accuracy"] if spec and spec.type == answer_type else None
        for capability in capabilities:
            concerned = spec is not None and spec.capability == capability
            scores[capability_key(str(capability))] = result["accuracy"] if concerned else None
    return scores
