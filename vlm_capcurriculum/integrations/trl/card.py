"""Model cards (``README.md``) for a curriculum run: one per stage folder and one in the output directory, in place
of TRL's generic card ("a fine-tuned version of None"): base model, stage, steps, data, curriculum and reward."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vlm_capcurriculum import __version__
from vlm_capcurriculum.curriculum import Plan, PlannedStage


def model_card(
    plan: Plan,
    *,
    base_model: str,
    files: Mapping[str, Sequence[str]],
    format_weight: float,
    stage: PlannedStage | None = None,
    step: int | None = None,
) -> str:
    """The card of the model after ``stage`` (at ``step``), or of the whole run when ``stage`` is None."""
    if stage is not None:
        title = f"# {stage.name}: stage {stage.position + 1} of {len(plan.stages)} of a capability-curriculum GRPO run"
        what = (
            f"The policy after curriculum step {step} of {plan.total_steps}: stage `{stage.name}` (capability "
            f"`{stage.capability}`) trained steps {stage.start_step}-{stage.end_step} ({stage.steps} steps, "
            f"{stage.epochs:g} epochs of {stage.num_samples} samples) on top of the stages before it."
        )
    else:
        title = "# A capability-curriculum GRPO run"
        what = f"{plan.total_steps} curriculum steps; the model after each stage is in `stages/NN-<stage>/`."
    table = ["| # | stage | capability | steps | epochs | data |", "|---|---|---|---|---|---|"]
    for row in plan.stages:
        mark = " **(this model)**" if stage is not None and row.position == stage.position else ""
        data = ", ".join(f"`{path}`" for path in files.get(row.name, ())) or "-"
        table.append(
            f"| {row.position + 1} | {row.name}{mark} | {row.capability} | {row.start_step}-{row.end_step} "
            f"| {row.epochs:g} | {data} |"
        )
    accuracy_weight = 1 - format_weight
    lines = [
        title,
        "",
        what,
        "",
        f"- **Base model:** `{base_model}`",
        f"- **Curriculum:** {plan.mode.value}, {plan.batch_size} prompts per step, seed {plan.seed}",
        f"- **Reward:** `overall = {accuracy_weight:g} * accuracy + {format_weight:g} * format` for answers in the "
        "format `<think> reasoning </think> \\boxed{answer}` (`vlm_capcurriculum.rewards`)",
        f"- **Trained with:** vlm-capcurriculum {__version__}, TRL `GRPOTrainer` (backend `trl`)",
        "",
        "## Curriculum",
        "",
        *table,
        "",
        "## Loading",
        "",
        "```python",
        "import vlm_capcurriculum.models  # registers the image-only processors of the tiny/Qwen/InternVL families",
        "from transformers import AutoModelForImageTextToText, AutoProcessor",
        "model = AutoModelForImageTextToText.from_pretrained(path)",
        "processor = AutoProcessor.from_pretrained(path)  # or, without the import: trust_remote_code=True",
        "```",
        "",
    ]
    return "\n".join(lines)
