"""EasyR1's reward manager with one addition: stage-specific reward keyword arguments.

``AutoRewardManager`` (``verl/workers/reward/function.py``) loads ``worker.reward.reward_function`` from its file and
binds ``worker.reward.reward_function_kwargs`` once, as ``functools.partial(fn, **kwargs)``. It runs as a Ray actor
(``verl.trainer.main.Runner``), so the driver cannot reach into it; :class:`CurriculumRewardManager` adds a method
the driver calls at a stage boundary (``ray.get(actor.set_reward_kwargs.remote(kwargs))``, which Ray orders before
the step's ``compute_reward``). Everything else (loading, batch/sequential types, metrics) is EasyR1's.

Only the training reward switches; the validation reward keeps the configured arguments, so validation scores
stay comparable across stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from verl.workers.reward import AutoRewardManager


class CurriculumRewardManager(AutoRewardManager):  # type: ignore[misc, valid-type]
    """``AutoRewardManager`` whose keyword arguments a stage can change."""

    def __init__(self, config: Any, tokenizer: Any) -> None:
        super().__init__(config, tokenizer)
        self._curriculum_function = self.reward_fn.func
        self._curriculum_base_kwargs = dict(self.reward_fn.keywords)

    def set_reward_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Use the configured kwargs updated with ``kwargs`` (``{}`` restores the configured ones); returns them."""
        merged = {**self._curriculum_base_kwargs, **dict(kwargs)}
        self.reward_fn = partial(self._curriculum_function, **merged)
        return merged

    def reward_kwargs(self) -> dict[str, Any]:
        return dict(self.reward_fn.keywords)
