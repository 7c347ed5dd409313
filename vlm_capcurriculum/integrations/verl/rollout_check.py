"""Does the rollout engine see what the actor sees? A check of verl's own per-step metrics, for a GPU node with vLLM.

verl logs, per step, how the rollout's log-probs agree with the actor's (``training/rollout_*``, ``rollout_corr/*``).
If vLLM placed InternVL's image placeholders differently from the actor's processor, image prompts disagree and
text-only ones do not, so the image stages are compared with the text-only stage of the same run.

    python -m vlm_capcurriculum.integrations.verl.rollout_check RUN/metrics.jsonl [...]

reads verl's ``file`` logger output, prints one row per stage and exits 1 with the reasons when a bound fails. The
bounds are first guesses (bf16 vLLM against an fp32 FSDP actor), not calibrated on a GPU run.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

#: Every step's rollout/actor probability correlation must reach this.
MIN_PEARSON = 0.95
#: An image stage's mean |log-perplexity difference| may exceed the text-only stage's by this factor (plus SLACK).
MAX_IMAGE_TO_TEXT = 3.0
SLACK = 0.01
TEXT_ONLY_STAGE = "text_reasoning"
KEYS = (
    "training/rollout_probs_diff_valid",
    "training/rollout_probs_diff_mean",
    "training/rollout_actor_probs_pearson_corr",
    "rollout_corr/log_ppl_abs_diff",
)


def read_steps(path: Path) -> list[tuple[int, str, dict[str, float]]]:
    """(step, stage name, the :data:`KEYS` present) for every training step verl logged to ``path``."""
    steps = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            data = record["data"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{path}:{number}: not a verl file-logger record ({error})") from None
        stages = {key.split("/")[1] for key in data if key.startswith("stage/") and key.count("/") >= 2}
        if "training/rollout_probs_diff_valid" not in data or len(stages) != 1:
            continue  # validation-only records, or no stage metrics
        values = {key: float(data[key]) for key in KEYS if key in data and data[key] is not None}
        steps.append((int(record["step"]), stages.pop(), values))
    return steps


def check(paths: list[Path]) -> tuple[list[str], list[str]]:
    """(table rows, problems) over the runs at ``paths``."""
    rows, problems = [], []
    for path in paths:
        steps = read_steps(path)
        if not steps:
            problems.append(f"{path}: no training step with rollout/actor metrics (is trainer.logger file on?)")
            continue
        by_stage: dict[str, list[dict[str, float]]] = defaultdict(list)
        for step, stage, values in steps:
            by_stage[stage].append(values)
            if values.get("training/rollout_probs_diff_valid") != 1:
                problems.append(f"{path} step {step}: no valid rollout log-probs to compare")
            pearson = values.get("training/rollout_actor_probs_pearson_corr", math.nan)
            if not pearson >= MIN_PEARSON:
                problems.append(f"{path} step {step} ({stage}): rollout/actor probability correlation {pearson:.4f}")
        means = {}
        for stage, values in by_stage.items():
            column = [v["rollout_corr/log_ppl_abs_diff"] for v in values if "rollout_corr/log_ppl_abs_diff" in v]
            means[stage] = sum(column) / len(column) if column else math.nan
            pearson = min(v.get("training/rollout_actor_probs_pearson_corr", math.nan) for v in values)
            rows.append(f"{path.parent.name:>12} {stage:>18} {len(values):>5} {means[stage]:>14.5f} {pearson:>12.4f}")
        text = means.get(TEXT_ONLY_STAGE)
        for stage, mean in means.items():
            if text is not None and stage != TEXT_ONLY_STAGE and not mean <= MAX_IMAGE_TO_TEXT * text + SLACK:
                problems.append(
                    f"{path} {stage}: mean |log-ppl diff| {mean:.5f} vs {text:.5f} on text only: the rollout engine "
                    "does not see the images as the actor does (placeholders, tiling)"
                )
    return rows, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics", nargs="+", type=Path, help="verl file-logger JSONL files")
    args = parser.parse_args(argv)
    rows, problems = check(args.metrics)
    print(f"{'run':>12} {'stage':>18} {'steps':>5} {'|log-ppl diff|':>14} {'min pearson':>12}")
    print("\n".join(rows))
    for problem in problems:
        print(f"FAIL: {problem}")
    print("rollout and actor agree" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
