"""A resumable sampler that yields a plan's index order.

Use it as the ``sampler`` of a (torchdata ``StatefulDataLoader``) data loader over the dataset of the global index
space, with ``batch_size=plan.batch_size`` and ``drop_last=True``: consecutive runs of ``batch_size`` indices are
the plan's steps, so the loader's ``i``-th batch is global step ``i + 1``.

Resume from the loader's own checkpoint (EasyR1's ``dataloader.pt``, verl's ``data.pt`` hold this sampler's
:meth:`state_dict`) or from the global step (``completed_steps=N``). Take the loader's state, not the sampler's:
torchdata snapshots the sampler per dispatched batch, so indices prefetched for later batches are not counted.
The state carries the plan's fingerprint: loading it into another plan's sampler is an error, not a silently
different run. No torch import: torchdata's ``Stateful`` protocol is structural.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlm_capcurriculum.curriculum.plan import Plan

STATE_VERSION = 1


class SamplerStateError(ValueError):
    """A sampler state that does not belong to this plan."""


class CurriculumSampler:
    """Yields ``plan.indices`` in order, starting after ``completed_steps`` steps; a later ``iter()`` starts from
    the beginning, as any sampler's next epoch would."""

    def __init__(self, plan: Plan, *, completed_steps: int = 0) -> None:
        if not 0 <= completed_steps <= plan.total_steps:
            raise ValueError(f"completed_steps {completed_steps} outside 0..{plan.total_steps}")
        self._indices = plan.indices
        self._batch_size = plan.batch_size
        self._fingerprint = plan.fingerprint
        self._next_start = completed_steps * plan.batch_size
        self._position = self._next_start

    def __len__(self) -> int:
        return len(self._indices)

    def __iter__(self) -> Iterator[int]:
        start, self._next_start = self._next_start, 0
        self._position = start
        return self._generate(start)

    def _generate(self, start: int) -> Iterator[int]:
        indices = self._indices
        for position in range(start, len(indices)):
            self._position = position + 1  # counted as handed out when the consumer receives it
            yield indices[position]

    @property
    def position(self) -> int:
        """Indices handed out so far in the current pass (or where the next pass will start after a load)."""
        return self._position

    @property
    def completed_steps(self) -> int:
        return self._position // self._batch_size

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "position": self._position,
            "batch_size": self._batch_size,
            "plan_fingerprint": self._fingerprint,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("version") != STATE_VERSION:
            raise SamplerStateError(f"unknown sampler state version {state_dict.get('version')!r}")
        if state_dict.get("plan_fingerprint") != self._fingerprint or state_dict.get("batch_size") != self._batch_size:
            raise SamplerStateError(
                f"the checkpoint's sampler state belongs to another plan (fingerprint "
                f"{state_dict.get('plan_fingerprint')}, batch {state_dict.get('batch_size')}; this plan: "
                f"{self._fingerprint}, batch {self._batch_size}): the data, the curriculum or its seed changed"
            )
        position = state_dict["position"]
        if not isinstance(position, int) or not 0 <= position <= len(self._indices):
            raise SamplerStateError(f"sampler position {position!r} outside 0..{len(self._indices)}")
        self._next_start = position
        self._position = position
