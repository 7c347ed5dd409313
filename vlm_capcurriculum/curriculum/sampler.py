"""A resumable sampler that yields a plan's index order.

Use it as the ``sampler`` of a (torchdata ``StatefulDataLoader``) data loader over the dataset of the global index
space, with ``batch_size=plan.batch_size`` and ``drop_last=True``: consecutive runs of ``batch_size`` indices are
the plan's steps, so the loader's ``i``-th batch is global step ``i + 1``.

Resuming, two equivalent ways:

* the loader's own checkpoint: ``StatefulDataLoader.state_dict()`` stores this sampler's :meth:`state_dict` and
  ``load_state_dict`` restores it (EasyR1's ``dataloader.pt``, verl's ``data.pt``);
* the global step: ``CurriculumSampler(plan, completed_steps=N)`` continues after step ``N``.

The state counts what the *consumer received*, not what was prefetched: the sampler advances when the loader
draws an index, and with worker processes torchdata snapshots the sampler at the moment it dispatches each batch
and returns the snapshot of the last batch it handed out, so indices prefetched for later batches are not
counted. (Calling :meth:`state_dict` directly on a sampler whose loader prefetches would count them; take the
loader's state instead.) The state carries the plan's fingerprint: loading it into a sampler of another plan
(changed data, spec or seed) is an error, not a silently different run.

Framework-free: no torch import. ``torchdata``'s ``Stateful`` protocol is structural, so this class satisfies it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlm_capcurriculum.curriculum.plan import Plan

STATE_VERSION = 1


class SamplerStateError(ValueError):
    """A sampler state that does not belong to this plan."""


class CurriculumSampler:
    """Yields ``plan.indices`` in order, starting after ``completed_steps`` steps.

    Each ``iter()`` is one pass over the plan from the resume position; the pass after a complete one starts
    from the beginning, as any sampler's next epoch would (a run normally makes exactly one pass).
    """

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
