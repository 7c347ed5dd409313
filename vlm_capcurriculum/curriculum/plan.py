"""The plan: everything a run will do, step by step, before it starts.

**Global index space.** Every backend builds ONE dataset: the records of all stages concatenated in stage
declaration order (files of a stage in the order listed, globs expanded in sorted order, rows in file order,
rows rejected by validation left out). Stage ``i`` occupies ``[offset_i, offset_i + count_i)`` of it
(:attr:`Plan.stage_data`). The plan's :attr:`Plan.indices` are indices into that dataset, in training order;
merged mode uses the same space (the pool is all of it).

**Steps.** Global steps are numbered from 1, as EasyR1's and verl's ``global_step`` (incremented before the
step runs; checkpoint ``global_step_N`` holds N completed steps). Step ``s`` trains on
``indices[(s - 1) * batch_size : s * batch_size]``. ``start_step``/``end_step`` are inclusive.
"""

from __future__ import annotations

import bisect
import hashlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from vlm_capcurriculum.curriculum.overrides import Overrides
from vlm_capcurriculum.curriculum.spec import Mode, Order


class PlanError(ValueError):
    """The spec cannot be planned on this data (a stage smaller than a batch, missing pass rates, ...)."""


@dataclass(frozen=True)
class DataSlice:
    """Where one spec stage's records sit in the global index space."""

    name: str
    capability: str
    offset: int
    count: int


@dataclass(frozen=True)
class PlannedStage:
    """One contiguous range of steps trained with one stage state.

    In ``staged`` mode there is one per spec stage; ``merged`` has one (``name`` "merged", the pool);
    ``stitched_replay`` has one per pass and stage (``replay_pass`` counts passes from 1).
    """

    position: int
    name: str
    capability: str
    stage_index: int | None  # index into CurriculumSpec.stages; None for the merged pool
    replay_pass: int | None
    num_samples: int
    epochs: float
    steps: int
    start_step: int
    end_step: int
    order: Order
    state: Overrides

    def contains(self, step: int) -> bool:
        return self.start_step <= step <= self.end_step

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "capability": self.capability,
            "num_samples": self.num_samples,
            "epochs": int(self.epochs) if float(self.epochs).is_integer() else round(self.epochs, 4),
            "steps": self.steps,
            "start_step": self.start_step,
            "end_step": self.end_step,
            "order": self.order.value,
            "overrides": self.state.set_fields(),
        }
        if self.replay_pass is not None:
            out["pass"] = self.replay_pass
        return out


@dataclass(frozen=True)
class Plan:
    """The schedule of a run. Build it with :func:`~vlm_capcurriculum.curriculum.schedule.build_plan`."""

    mode: Mode
    batch_size: int
    seed: int
    stages: tuple[PlannedStage, ...]
    stage_data: tuple[DataSlice, ...]
    indices: tuple[int, ...] = field(repr=False)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        expected = self.total_steps * self.batch_size
        if len(self.indices) != expected:
            raise PlanError(f"plan holds {len(self.indices)} indices for {self.total_steps} steps of {self.batch_size}")

    @property
    def total_steps(self) -> int:
        return self.stages[-1].end_step if self.stages else 0

    @property
    def dataset_size(self) -> int:
        """Size of the global index space (all stages' records)."""
        return sum(piece.count for piece in self.stage_data)

    def stage_at(self, step: int) -> PlannedStage:
        """The planned stage that trains global step ``step`` (1-based)."""
        if not 1 <= step <= self.total_steps:
            raise IndexError(f"step {step} is outside the plan (steps 1..{self.total_steps})")
        position = bisect.bisect_left(self._end_steps, step)
        return self.stages[position]

    def batch(self, step: int) -> Sequence[int]:
        """The global indices trained at ``step`` (1-based)."""
        if not 1 <= step <= self.total_steps:
            raise IndexError(f"step {step} is outside the plan (steps 1..{self.total_steps})")
        return self.indices[(step - 1) * self.batch_size : step * self.batch_size]

    @cached_property
    def _end_steps(self) -> list[int]:
        return [stage.end_step for stage in self.stages]

    @cached_property
    def fingerprint(self) -> str:
        """A digest of the batch size and the exact index order: a resumed sampler checks it matches."""
        digest = hashlib.sha256(f"{self.batch_size}:{self.total_steps}:".encode())
        digest.update(array("q", self.indices).tobytes())
        return digest.hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (without the index order, which :attr:`indices` holds)."""
        return {
            "mode": self.mode.value,
            "total_steps": self.total_steps,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "step_numbering": "global steps count from 1; start_step and end_step are inclusive",
            "dataset_size": self.dataset_size,
            "stages": [stage.to_json() for stage in self.stages],
            "stage_data": [
                {"name": piece.name, "capability": piece.capability, "offset": piece.offset, "count": piece.count}
                for piece in self.stage_data
            ],
            "fingerprint": self.fingerprint,
            "notes": list(self.notes),
        }
