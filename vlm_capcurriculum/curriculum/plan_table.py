"""The plan as people read it: the table ``vlmcc plan`` and every backend's ``--dry-run`` print before a run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vlm_capcurriculum.curriculum.overrides import END_ACTIONS, START_ACTIONS, Overrides
from vlm_capcurriculum.curriculum.schedule import epochs_text

if TYPE_CHECKING:
    from vlm_capcurriculum.curriculum.data import CurriculumData
    from vlm_capcurriculum.curriculum.plan import Plan


def print_plan(plan: Plan, data: CurriculumData) -> None:
    """The plan table, totals, per-stage data reports and notes (also printed by backends' ``--dry-run``)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # piped or captured output: do not squeeze the table into 80 columns
    table = Table(title=f"curriculum plan: {plan.mode.value}, batch {plan.batch_size}, seed {plan.seed}")
    for column, justify in (
        ("#", "right"),
        ("stage", "left"),
        ("capability", "left"),
        ("samples", "right"),
        ("epochs", "right"),
        ("steps", "right"),
        ("step range", "right"),
        ("order", "left"),
        ("overrides", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for stage in plan.stages:
        name = stage.name if stage.replay_pass is None else f"{stage.name} (pass {stage.replay_pass})"
        overrides = _describe(stage.state)
        table.add_row(
            str(stage.position + 1),
            name,
            stage.capability,
            str(stage.num_samples),
            epochs_text(stage.epochs),
            str(stage.steps),
            f"{stage.start_step}-{stage.end_step}",
            stage.order.value,
            overrides,
        )
    table.add_section()
    table.add_row("", "total", "", str(plan.dataset_size), "", str(plan.total_steps), f"1-{plan.total_steps}", "", "")
    console.print(table)
    console.print("steps count from 1 (the frameworks' global_step); ranges are inclusive")
    for stage in data.stages:
        console.print(f"data {stage.stage.name}: {stage.report.summary()}", highlight=False)
    for note in plan.notes:
        console.print(note if note.startswith("warning: ") else f"note: {note}", highlight=False)


def _describe(state: Overrides) -> str:
    """Knobs as key=value, then the actions that are on: ``lr=3e-07 | start: reset_optimizer | end: validate``."""
    parts = [" ".join(f"{key}={value}" for key, value in state.knobs().items())]
    for label, actions in (("start", START_ACTIONS), ("end", END_ACTIONS)):
        on = [action for action in actions if state.flag(action)]
        if on:
            parts.append(f"{label}: " + ", ".join(on))
    return " | ".join(part for part in parts if part) or "-"
