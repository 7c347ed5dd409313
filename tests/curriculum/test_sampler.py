from __future__ import annotations

import io
import random

import pytest

from vlm_capcurriculum.curriculum import (
    CurriculumSampler,
    SamplerStateError,
    StageData,
    build_plan,
    parse_curriculum,
)


def make_plan(staged_config, seed: int = 1):
    return build_plan(parse_curriculum(staged_config(seed=seed)), [StageData(10), StageData(9), StageData(13)])


def test_yields_the_plan_order(staged_config) -> None:
    plan = make_plan(staged_config)
    sampler = CurriculumSampler(plan)
    assert list(sampler) == list(plan.indices) and len(sampler) == len(plan.indices)
    assert list(sampler) == list(plan.indices)  # the next pass starts over


def test_starts_after_completed_steps(staged_config) -> None:
    plan = make_plan(staged_config)
    assert list(CurriculumSampler(plan, completed_steps=5)) == list(plan.indices[5 * 4 :])
    assert list(CurriculumSampler(plan, completed_steps=plan.total_steps)) == []


def test_state_counts_what_was_handed_out_and_resumes_there(staged_config) -> None:
    plan = make_plan(staged_config)
    sampler = CurriculumSampler(plan)
    iterator = iter(sampler)
    taken = [next(iterator) for _ in range(11)]
    state = sampler.state_dict()
    assert state["position"] == 11
    resumed = CurriculumSampler(plan)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state  # before iterating, the state is the loaded one
    assert taken + list(resumed) == list(plan.indices)


def test_state_of_another_plan_is_rejected(staged_config) -> None:
    state = CurriculumSampler(make_plan(staged_config)).state_dict()
    with pytest.raises(SamplerStateError, match="belongs to another plan"):
        CurriculumSampler(make_plan(staged_config, seed=2)).load_state_dict(state)


# ----------------------------------------------------------------------------- torchdata StatefulDataLoader

torch = pytest.importorskip("torch")
stateful_dataloader = pytest.importorskip("torchdata.stateful_dataloader")


class IndexDataset(torch.utils.data.Dataset):
    """Returns the index it is asked for, so batches show exactly which indices were drawn."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


def loader_for(plan, sampler, workers: int, snapshot_every: int):
    return stateful_dataloader.StatefulDataLoader(
        IndexDataset(plan.dataset_size),
        batch_size=plan.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        snapshot_every_n_steps=snapshot_every,
        **({"prefetch_factor": 2} if workers else {}),
    )


@pytest.mark.parametrize(("workers", "snapshot_every"), [(0, 1), (2, 1), (2, 3)])
def test_resume_under_stateful_dataloader_continues_the_identical_sequence(staged_config, workers, snapshot_every):
    plan = make_plan(staged_config)
    expected = [plan.batch(step) for step in range(1, plan.total_steps + 1)]
    uninterrupted = [batch.tolist() for batch in loader_for(plan, CurriculumSampler(plan), workers, snapshot_every)]
    assert [list(b) for b in expected] == uninterrupted

    rng = random.Random(workers * 10 + snapshot_every)
    for stop in sorted(rng.sample(range(0, plan.total_steps + 1), 3)):
        loader = loader_for(plan, CurriculumSampler(plan), workers, snapshot_every)
        iterator = iter(loader)
        consumed = [next(iterator).tolist() for _ in range(stop)]  # the loader prefetches beyond this
        buffer = io.BytesIO()
        torch.save(loader.state_dict(), buffer)  # what EasyR1 writes to dataloader.pt
        del iterator, loader

        buffer.seek(0)
        sampler = CurriculumSampler(plan)
        resumed = loader_for(plan, sampler, workers, snapshot_every)
        resumed.load_state_dict(torch.load(buffer, weights_only=True))
        rest = [batch.tolist() for batch in resumed]
        assert consumed + rest == uninterrupted, f"resume after {stop} steps"
        assert sampler.completed_steps == plan.total_steps
