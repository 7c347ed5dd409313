"""The curriculum's order in the layout TRL's ``GRPOTrainer`` expects from its train sampler.

**One curriculum step in TRL terms.** Plan step ``s`` (``plan.batch(s)``, ``B`` prompts) is exactly one TRL
*generation batch*: ``generation_batch_size = B * num_generations`` completions, generated once, then cut into
``steps_per_generation`` micro-batches of ``per_device_train_batch_size`` completions and replayed
``num_iterations`` times. Every ``gradient_accumulation_steps`` micro-batches make one optimizer step, so one
curriculum step is ``updates_per_step = steps_per_generation * num_iterations / gradient_accumulation_steps``
optimizer steps (TRL's ``global_step``), an integer by construction (:func:`updates_per_step` checks it). With
EasyR1's names: ``B = rollout_batch_size``, and ``global_batch_size`` prompts per update give
``B / global_batch_size`` updates per step.

TRL's data loader draws one generation batch per micro-step (``batch_size = per_device_train_batch_size *
steps_per_generation``) and only the first draw of each ``steps_per_generation * num_iterations`` is used (the rest
replay the buffered generations), which is why TRL's ``RepeatSampler`` yields every chunk ``repeat_count`` times.
:class:`CurriculumRepeatSampler` is that sampler, unshuffled, over the plan's order: each prompt index
``num_generations`` times in a row, each plan batch ``repeat_count`` times. A generation batch therefore is one plan
batch and never crosses a stage boundary.

**Resume.** The sampler always describes the whole run; transformers' ``Trainer`` fast-forwards it on resume by
skipping ``global_step * gradient_accumulation_steps`` loader batches (``skip_first_batches``), which is exactly
``completed_steps * repeat_count``: the first batch after a resume is ``plan.batch(completed_steps + 1)``. The
trainer checks that invariant on every generation batch (the ``index`` column), so a mismatch cannot go unnoticed.
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
        if num_generations < 1 or repeat_count < 1:
            raise ValueError(f"num_generations ({num_generations}) and repeat_count ({repeat_count}) must be >= 1")
        self.plan = plan
        self.order = list(plan.indices)
        super().__init__(self.order, num_generations, plan.batch_size, repeat_count, shuffle=False)

    def __iter__(self) -> Iterator[int]:
        return (self.order[position] for position in super().__iter__())
