"""EasyR1 reward for the capability curriculum: ``worker.reward.reward_function=reward_fns/capcurriculum.py:compute_score``.

EasyR1 loads this file by path (``verl/workers/reward/function.py``: ``importlib`` spec from the file, module
attributes ``REWARD_TYPE`` and ``REWARD_NAME``) inside its reward Ray actor and calls ``compute_score`` with the
whole batch, plus ``worker.reward.reward_function_kwargs`` as keyword arguments. It stays a thin shim: the reward
is :func:`vlm_capcurriculum.rewards.score_batch` (install the package next to EasyR1).

Each result has ``overall`` (the reward: 0.9 accuracy + 0.1 format, the paper's weights), ``accuracy``, ``format``
and, for per-stage metrics, ``accuracy_<answer type>`` and ``accuracy_<capability>`` on the samples they concern:
EasyR1 averages every key over the samples that have it and logs it as ``reward/<key>``.
"""

from __future__ import annotations

from typing import Any

from vlm_capcurriculum.rewards import DEFAULT_TIMEOUT_S, PAPER_FORMAT_WEIGHT, score_batch
from vlm_capcurriculum.rewards.extract import ExtractionMode
from vlm_capcurriculum.rewards.guard import configure_pool, prestart_pool

REWARD_NAME = "capcurriculum"
REWARD_TYPE = "batch"


def compute_score(
    reward_inputs: list[dict[str, Any]],
    format_weight: float = PAPER_FORMAT_WEIGHT,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    breakdown: bool = True,
    workers: int | None = None,
    extraction: ExtractionMode = "paper",
) -> list[dict[str, float]]:
    """Score a batch of ``{"response", "response_length", "ground_truth"}`` inputs.

    Keyword arguments (``worker.reward.reward_function_kwargs``): ``format_weight`` (paper: 0.1), ``timeout_s``
    (hard limit per answer), ``breakdown`` (per-type/per-capability accuracy keys), ``workers`` (guard processes),
    ``extraction`` (``"paper"``: accuracy from the last box only, the paper's reward; ``"lenient"``: the fallback
    chain, for evaluation).
    An unknown keyword is a configuration error and fails the first call with a ``TypeError``.
    """
    if not isinstance(reward_inputs, list):
        raise TypeError("capcurriculum is a batch reward (REWARD_TYPE = 'batch'); it got a single input")
    if workers is not None:
        configure_pool(workers)
    responses = [item["response"] for item in reward_inputs]
    ground_truths = [item["ground_truth"] for item in reward_inputs]
    return score_batch(
        responses,
        ground_truths,
        format_weight=format_weight,
        timeout_s=timeout_s,
        breakdown=breakdown,
        extraction=extraction,
    )


prestart_pool()  # EasyR1 loads this file in its reward actor at start-up: warm the guard while rollouts run
