"""The curriculum's order in the layout TRL's ``GRPOTrainer`` expects from its train sampler: plan step ``s`` is
exactly one generation batch and :func:`updates_per_step` optimizer steps (``docs/integrations/trl.md``, "One
curriculum step in TRL terms"), so a resume's skipped loader batches land on a step boundary.
"""

from __future__ import annotations

from collections.abc import Iterator

from trl.trainer.utils import RepeatSampler

from vlm_capcurriculum.curriculum import Plan


class BatchLayoutError(ValueError):
    """TRL batch settings that cannot map one curriculum step onto whole optimizer steps."""


def updates_per_step(
    *,
    prompts_per_step: int,
    num_generations: int,
    per_device_train_batch_size: int,
    gradient_accumulation_steps: int,
    num_iterations: int = 1,
    world_size: int = 1,
) -> int:
    """Optimizer steps per curriculum step; raises :class:`BatchLayoutError` naming the setting at fault."""
    completions = prompts_per_step * num_generations
    global_micro = per_device_train_batch_size * world_size
    if completions % global_micro:
        raise BatchLayoutError(
            f"a curriculum step generates {prompts_per_step} prompts x {num_generations} generations = {completions} "
            f"completions, not a multiple of the micro-batch per_device_train_batch_size x processes = {global_micro}"
        )
    micro_steps = completions // global_micro * num_iterations
    if micro_steps % gradient_accumulation_steps:
        raise BatchLayoutError(
            f"a curriculum step is {micro_steps} micro-batches ({completions // global_micro} per generation x "
            f"num_iterations {num_iterations}), not a multiple of gradient_accumulation_steps "
            f"{gradient_accumulation_steps}: an optimizer step would mix two curriculum steps"
        )
    return micro_steps // gradient_accumulation_steps


class CurriculumRepeatSampler(RepeatSampler):
    """TRL's ``RepeatSampler`` (unshuffled) over the plan's order ``plan.indices`` (see the module docstring)."""

    def __init__(self, plan: Plan, *, num_generations: int, repeat_count: int) -> None:
        self.plan = plan
        self.order = list(plan.indices)
        super().__init__(self.order, num_generations, plan.batch_size, repeat_count, shuffle=False)

    def __iter__(self) -> Iterator[int]:
        return (self.order[position] for position in super().__iter__())
