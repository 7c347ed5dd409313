"""The schedule: a pure function from spec × stage data to the :class:`Plan`.

Rules (each stage, or the merged pool, of ``n`` samples with batch size ``B``):

* An epoch is ``floor(n / B)`` steps: like EasyR1's and verl's ``drop_last=True`` loaders, the ``n mod B``
  samples that do not fill a batch sit that epoch out. A stage with fewer samples than ``B`` is an error.
* ``epochs: E`` trains ``E * floor(n / B)`` steps; ``steps: N`` trains ``N`` steps, epoch after epoch, the last
  one cut short.
* Per epoch order: ``file`` keeps the file order and leaves out the tail; ``shuffle`` draws a fresh permutation
  every epoch; ``easy_to_hard`` sorts by pass rate, highest (easiest) first, ``hard_to_easy`` lowest first,
  ties in a fresh random order every epoch. For the difficulty orders the samples sitting an epoch out are
  drawn at random (the sort order of the rest is kept), so the hardest samples are not the ones always left
  out, as they are in the reference code's pre-sorted file read with ``drop_last``. A difficulty order over a
  record without ``pass_rate`` is an error.
* ``merged``: the pool of all stages trains the staged plan's total number of steps (paper Sec. 3.2.2).
* ``stitched_replay``: ``curriculum.epochs`` passes, each running one epoch of every stage in order.

Randomness: :class:`random.Random` seeded with ``seed``, the stage name and the epoch, through only ``random()``
(stable across Python versions), so a stage keeps its shuffles when the stages around it change (ablations).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vlm_capcurriculum.curriculum.plan import DataSlice, Plan, PlanError, PlannedStage
from vlm_capcurriculum.curriculum.spec import CurriculumSpec, Mode, Order, StageSpec


@dataclass(frozen=True)
class StageData:
    """What the schedule needs to know about one stage's records: how many, and their pass rates (in order);
    ``where`` names each record (``file:line``) in errors."""

    num_samples: int
    pass_rates: tuple[float | None, ...] | None = None
    where: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.num_samples < 0:
            raise ValueError(f"num_samples must be >= 0, got {self.num_samples}")
        if self.pass_rates is not None:
            object.__setattr__(self, "pass_rates", tuple(self.pass_rates))
            if len(self.pass_rates) != self.num_samples:
                raise ValueError(f"{len(self.pass_rates)} pass rates for {self.num_samples} samples")


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(part) for part in (seed, *parts)))


def _shuffled(items: Sequence[int], rng: random.Random) -> list[int]:
    """Fisher-Yates using only ``rng.random()`` (stable across Python versions)."""
    out = list(items)
    for i in range(len(out) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        out[i], out[j] = out[j], out[i]
    return out


def _epoch(n: int, batch_size: int, order: Order, pass_rates: Sequence[float] | None, rng: random.Random) -> list[int]:
    """One epoch over local indices ``0..n-1``: ``floor(n / B) * B`` of them in training order."""
    keep = (n // batch_size) * batch_size
    if order is Order.file:
        return list(range(keep))
    if order is Order.shuffle:
        return _shuffled(range(n), rng)[:keep]
    assert pass_rates is not None
    ties_shuffled = _shuffled(range(n), rng)
    descending = order is Order.easy_to_hard
    ranked = sorted(ties_shuffled, key=lambda i: pass_rates[i], reverse=descending)  # stable: ties stay shuffled
    if keep == n:
        return ranked
    left_out = set(_shuffled(range(n), rng)[: n - keep])
    return [i for i in ranked if i not in left_out]


def _checked_pass_rates(name: str, data: StageData, order: Order) -> list[float] | None:
    if not order.needs_pass_rate:
        return None
    rates = data.pass_rates
    missing = [i for i, rate in enumerate(rates or [None] * data.num_samples) if rate is None]
    if missing:
        named = [data.where[i] if data.where else f"record {i}" for i in missing[:3]]
        raise PlanError(
            f"{name}: order {order.value} needs pass_rate on every record; {len(missing)} of {data.num_samples} "
            f"records have none ({', '.join(named)}{' ...' if len(missing) > 3 else ''}); compute pass rates "
            "(vlmcc data passk) or use order shuffle/file"
        )
    return list(rates)  # type: ignore[arg-type]


def _steps_per_epoch(name: str, n: int, batch_size: int) -> int:
    per_epoch = n // batch_size
    if per_epoch == 0:
        raise PlanError(f"{name}: {n} samples, fewer than one batch of {batch_size}; lower curriculum.batch_size")
    return per_epoch


def _run(
    n: int,
    steps: int,
    batch_size: int,
    order: Order,
    pass_rates: Sequence[float] | None,
    seed: int,
    key: str,
    first_epoch: int = 0,
) -> list[int]:
    """``steps`` batches of local indices, epoch after epoch."""
    need = steps * batch_size
    out: list[int] = []
    epoch = first_epoch
    while len(out) < need:
        out += _epoch(n, batch_size, order, pass_rates, _rng(seed, key, epoch))
        epoch += 1
    return out[:need]


class _PlanBuilder:
    """Appends planned stages one after another, numbering their steps and collecting their indices."""

    def __init__(self, spec: CurriculumSpec, slices: list[DataSlice]) -> None:
        self.spec = spec
        self.batch = spec.batch_size
        self.slices = slices
        self.stages: list[PlannedStage] = []
        self.indices: list[int] = []
        self.notes: list[str] = []

    def add(self, local: list[int], offset: int, **stage: Any) -> None:
        """A stage training the local indices ``local`` (of the slice at ``offset``); ``stage``: the rest of the
        :class:`PlannedStage` fields."""
        steps = len(local) // self.batch
        start = (self.stages[-1].end_step if self.stages else 0) + 1
        self.stages.append(
            PlannedStage(
                position=len(self.stages),
                epochs=steps / (stage["num_samples"] // self.batch),
                steps=steps,
                start_step=start,
                end_step=start + steps - 1,
                **stage,
            )
        )
        self.indices.extend(offset + i for i in local)

    def add_stage(
        self,
        stage: StageSpec,
        data: StageData,
        steps: int,
        rates: Sequence[float] | None,
        *,
        replay_pass: int | None = None,
    ) -> None:
        """``steps`` steps of a spec stage; replay pass k trains its epoch k (the draws of a staged run's epoch k)."""
        self.add(
            _run(
                data.num_samples,
                steps,
                self.batch,
                stage.order,
                rates,
                self.spec.seed,
                stage.name,
                (replay_pass or 1) - 1,
            ),
            self.slices[stage.index].offset,
            name=stage.name,
            capability=stage.capability,
            stage_index=stage.index,
            replay_pass=replay_pass,
            num_samples=data.num_samples,
            order=stage.order,
            state=self.spec.stage_state(stage),
        )

    def note_left_out(self, name: str, n: int) -> None:
        rest = n % self.batch
        if rest:
            self.notes.append(f"{name}: {n} samples, batch {self.batch}: {rest} sit out each epoch (drop_last)")


def _staged_steps(spec: CurriculumSpec, stage_data: Sequence[StageData]) -> list[int]:
    """Steps of each stage in the staged plan (also the merged run's total)."""
    steps = []
    for stage, data in zip(spec.stages, stage_data, strict=True):
        per_epoch = _steps_per_epoch(f"stage {stage.name!r}", data.num_samples, spec.batch_size)
        steps.append(stage.steps if stage.steps is not None else stage.epochs * per_epoch)  # type: ignore[operator]
    return steps


def _plan_staged(plan: _PlanBuilder, stage_data: Sequence[StageData]) -> None:
    spec = plan.spec
    for stage, data, steps in zip(spec.stages, stage_data, _staged_steps(spec, stage_data), strict=True):
        plan.add_stage(stage, data, steps, _checked_pass_rates(f"stage {stage.name!r}", data, stage.order))
        plan.note_left_out(stage.name, data.num_samples)


def _plan_merged(plan: _PlanBuilder, stage_data: Sequence[StageData]) -> None:
    spec = plan.spec
    staged_steps = _staged_steps(spec, stage_data)
    size = sum(data.num_samples for data in stage_data)
    pass_rates = None
    if spec.order.needs_pass_rate:
        pass_rates = tuple(rate for data in stage_data for rate in (data.pass_rates or (None,) * data.num_samples))
    where = tuple(name for data in stage_data for name in data.where)
    pool = StageData(size, pass_rates, where if len(where) == size else ())
    rates = _checked_pass_rates("curriculum.order (merged pool)", pool, spec.order)
    _steps_per_epoch("merged pool", size, spec.batch_size)
    total = sum(staged_steps)
    plan.add(
        _run(size, total, spec.batch_size, spec.order, rates, spec.seed, "merged"),
        0,
        name="merged",
        capability="+".join(dict.fromkeys(stage.capability for stage in spec.stages)),
        stage_index=None,
        replay_pass=None,
        num_samples=size,
        order=spec.order,
        state=spec.overrides,
    )
    plan.notes.append(f"merged: {total} steps, the staged total ({' + '.join(map(str, staged_steps))})")
    plan.note_left_out("merged pool", size)


def _plan_stitched(plan: _PlanBuilder, stage_data: Sequence[StageData]) -> None:
    spec = plan.spec
    assert spec.epochs is not None
    checked = []
    for stage, data in zip(spec.stages, stage_data, strict=True):
        _steps_per_epoch(f"stage {stage.name!r}", data.num_samples, spec.batch_size)
        checked.append(_checked_pass_rates(f"stage {stage.name!r}", data, stage.order))
        plan.note_left_out(stage.name, data.num_samples)
    for replay_pass in range(1, spec.epochs + 1):
        for stage, data, rates in zip(spec.stages, stage_data, checked, strict=True):
            plan.add_stage(stage, data, data.num_samples // spec.batch_size, rates, replay_pass=replay_pass)


def build_plan(spec: CurriculumSpec, stage_data: Sequence[StageData]) -> Plan:
    """The plan of ``spec`` on data of the given sizes (one :class:`StageData` per spec stage, in order)."""
    if len(stage_data) != len(spec.stages):
        raise PlanError(f"{len(stage_data)} stage data entries for {len(spec.stages)} stages")
    slices: list[DataSlice] = []
    offset = 0
    for stage, data in zip(spec.stages, stage_data, strict=True):
        slices.append(DataSlice(stage.name, stage.capability, offset, data.num_samples))
        offset += data.num_samples
    plan = _PlanBuilder(spec, slices)
    {Mode.staged: _plan_staged, Mode.merged: _plan_merged, Mode.stitched_replay: _plan_stitched}[spec.mode](
        plan, stage_data
    )
    return Plan(
        mode=spec.mode,
        batch_size=spec.batch_size,
        seed=spec.seed,
        stages=tuple(plan.stages),
        stage_data=tuple(slices),
        indices=tuple(plan.indices),
        notes=tuple(plan.notes),
    )


def epochs_text(epochs: float) -> str:
    """Epochs for display: an integer when whole, else two decimals."""
    return str(int(epochs)) if math.isclose(epochs, round(epochs)) else f"{epochs:.2f}"
