"""One curriculum step is one TRL generation batch: the sampler's layout, the optimizer-step arithmetic, resume."""

from __future__ import annotations

import itertools

import pytest
from trl_helpers import small_plan

from vlm_capcurriculum.integrations.trl.sampler import BatchLayoutError, CurriculumRepeatSampler, updates_per_step

trl = pytest.importorskip("trl")
from trl.trainer.utils import RepeatSampler  # noqa: E402


def test_layout_is_trls_repeat_layout_over_the_plans_batches() -> None:
    _, plan = small_plan(steps=(2, 3, 1), batch_size=4)
    sampler = CurriculumRepeatSampler(plan, num_generations=3, repeat_count=2)
    order = list(sampler)
    assert len(order) == len(sampler) == plan.total_steps * 4 * 3 * 2
    chunk = 4 * 3  # one generation batch: the plan's 4 prompts, each 3 times in a row
    for step in range(1, plan.total_steps + 1):
        first = (step - 1) * chunk * 2
        expected = [index for index in plan.batch(step) for _ in range(3)]
        assert order[first : first + chunk] == expected
        assert order[first + chunk : first + 2 * chunk] == expected  # replayed for the buffered micro-steps


def test_same_layout_as_trls_sampler_on_an_unshuffled_order() -> None:
    """With a plan whose order is 0..n-1, TRL's own RepeatSampler (shuffle off) yields exactly our sequence."""
    from trl_helpers import STAGE_FILES

    from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum

    spec = parse_curriculum(
        {"mode": "staged", "batch_size": 4, "stages": [
            {"name": "perception", "train_files": [str(STAGE_FILES["perception"])], "epochs": 1, "order": "file"}]}
    )  # fmt: skip
    _, plan = plan_curriculum(spec)
    assert list(plan.indices) == list(range(plan.total_steps * 4))
    ours = list(CurriculumRepeatSampler(plan, num_generations=2, repeat_count=3))
    theirs = list(RepeatSampler(range(36), mini_repeat_count=2, batch_size=4, repeat_count=3, shuffle=False))
    assert ours == theirs


def test_generation_batches_never_cross_a_stage_boundary() -> None:
    _, plan = small_plan(steps=(2, 2, 2), batch_size=4)
    sampler = CurriculumRepeatSampler(plan, num_generations=2, repeat_count=1)
    batches = list(itertools.batched(sampler, 8)) if hasattr(itertools, "batched") else None
    if batches is None:  # Python 3.10/3.11
        order = list(sampler)
        batches = [order[i : i + 8] for i in range(0, len(order), 8)]
    for step, batch in enumerate(batches, start=1):
        stage = plan.stage_at(step)
        piece = plan.stage_data[stage.stage_index]
        assert all(piece.offset <= index < piece.offset + piece.count for index in batch), step


def test_resume_skip_lands_on_the_next_step() -> None:
    """The Trainer skips global_step x gradient_accumulation loader batches; that is completed x repeat_count."""
    _, plan = small_plan(steps=(2, 2, 2), batch_size=4)
    generations, micro_per_generation = 2, 4  # 8 completions in micro-batches of 2
    sampler = CurriculumRepeatSampler(plan, num_generations=generations, repeat_count=micro_per_generation)
    loader_batch = 4 * generations  # TRL's loader yields a whole generation batch per micro-step
    order = list(sampler)
    accumulation = 2
    per_step = updates_per_step(
        prompts_per_step=4, num_generations=2, per_device_train_batch_size=2, gradient_accumulation_steps=accumulation
    )
    assert per_step == 2
    for completed in range(plan.total_steps):
        skipped = completed * per_step * accumulation
        first = order[skipped * loader_batch : (skipped + 1) * loader_batch]
        assert first == [index for index in plan.batch(completed + 1) for _ in range(generations)]


@pytest.mark.parametrize(
    ("kwargs", "per_step"),
    [
        ({"per_device_train_batch_size": 8, "gradient_accumulation_steps": 1}, 1),
        ({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 4}, 1),
        ({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2}, 2),
        ({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "num_iterations": 2}, 4),
    ],
)
def test_updates_per_step(kwargs: dict, per_step: int) -> None:
    assert updates_per_step(prompts_per_step=4, num_generations=2, **kwargs) == per_step


def test_layouts_that_would_split_a_step_are_refused() -> None:
    with pytest.raises(BatchLayoutError, match="not a multiple of the micro-batch"):
        updates_per_step(
            prompts_per_step=4, num_generations=2, per_device_train_batch_size=3, gradient_accumulation_steps=1
        )
    with pytest.raises(BatchLayoutError, match="mix two curriculum steps"):
        updates_per_step(
            prompts_per_step=4, num_generations=2, per_device_train_batch_size=2, gradient_accumulation_steps=3
        )
