"""What a TRL curriculum run prints for the person watching it, instead of TRL's progress bar and ~900-character
metrics dict per optimizer step (the numbers still go to ``report_to``): one line per curriculum step, a banner
naming what a stage changes, a line when it ends and the per-stage table at the end of the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vlm_capcurriculum.curriculum import Plan, PlannedStage


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def step_line(plan: Plan, step: int, *, reward: float, accuracy: float, length: float, seconds: float) -> str:
    """``[2/3 text_reasoning] step 14/36  reward 0.412  acc 0.375  len 38  2.1s``"""
    stage = plan.stage_at(step)
    width = len(str(plan.total_steps))
    return (
        f"[{stage.position + 1}/{len(plan.stages)} {stage.name}] step {step:>{width}}/{plan.total_steps}  "
        f"reward {_number(reward)}  acc {_number(accuracy)}  len {length:.0f}  {seconds:.1f}s"
    )


def stage_banner(plan: Plan, stage: PlannedStage, *, base_lr: float, resumed_at: int | None = None) -> str:
    """What the stage changes, in words: tower, lr and every other knob it sets, optimizer reset, reference refresh."""
    state = stage.state
    knobs = dict(state.knobs())
    changes = []
    tower = knobs.pop("vision_tower", None)
    if tower is not None:
        changes.append(f"vision tower {tower}")
    changes.append(f"lr {knobs.pop('lr', base_lr):g}")
    changes += [f"{key} {value}" for key, value in knobs.items()]
    if resumed_at is None and stage.start_step > 1:  # the controller skips the first stage's start actions
        if state.flag("reset_optimizer"):
            changes.append("optimizer reset")
        if state.flag("refresh_reference"):
            changes.append("KL reference refreshed to the current policy")
    ends = [
        words for action, words in (("save_checkpoint", "checkpoint"), ("validate", "validation")) if state.flag(action)
    ]
    head = f"== stage {stage.position + 1}/{len(plan.stages)} {stage.name} ({stage.capability}): "
    span = f"steps {stage.start_step}-{stage.end_step}"
    if resumed_at is not None:
        span = f"resumed after step {resumed_at}, {span}"
    tail = f"; at its end: {', '.join(ends)}" if ends else ""
    return f"{head}{span}; {', '.join(changes)}{tail}"


def stage_end_line(
    plan: Plan, stage: PlannedStage, step: int, checkpoint: str | None, validation: Mapping[str, float] | None
) -> str:
    parts = [f"== stage {stage.position + 1}/{len(plan.stages)} {stage.name} done at step {step}"]
    if checkpoint:
        parts.append(f"checkpoint written: {checkpoint}")
    if validation:
        parts.append(
            f"validation reward {_number(validation.get('val/reward'))}, accuracy {_number(validation.get('val/accuracy'))}"
        )
    return "; ".join(parts)


def print_stage_table(entries: Sequence[Mapping[str, Any]]) -> None:
    """The per-stage summary as a table on the console (what the CPU quick start ends with)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    table = Table(title="curriculum stages")
    columns = ["#", "stage", "steps", "step range", "reward start", "reward end", "accuracy", "format",
               "length", "val accuracy", "checkpoint"]  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("stage", "checkpoint") else "right")
    for entry in entries:
        validation = entry.get("validation") or {}
        table.add_row(
            str(entry["stage"]),
            entry["name"],
            f"{entry['steps']}/{entry['planned_steps']}",
            f"{entry['first_step']}-{entry['last_step']}",
            _number(entry["reward_start"]),
            _number(entry["reward_end"]),
            _number(entry["accuracy"]),
            _number(entry["format"]),
            _number(entry["mean_completion_length"], 1),
            _number(validation.get("val/accuracy")),
            entry.get("checkpoint") or "-",
        )
    console.print(table)
    console.print(
        "reward start/end: mean reward over the first/last tenth of a stage's steps; length: mean completion tokens",
        highlight=False,
    )
