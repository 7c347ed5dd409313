"""EasyR1's reward manager with one addition: stage-specific reward keyword arguments.

``AutoRewardManager`` binds ``worker.reward.reward_function_kwargs`` once, as ``functools.partial``, in a Ray actor the
driver cannot reach into; :class:`CurriculumRewardManager` adds the method the engine calls at a stage boundary.
Only the training reward switches, so validation scores stay comparable across stages.
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
