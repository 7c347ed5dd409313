"""How long planning and sampling take at the paper's scale (run by hand: ``python benchmarks/curriculum_plan.py``).

Stage sizes follow the reference runs (batch 512; 6, 25 and 31 steps per epoch: about 3.2k perception, 13k
text and 16k visual questions; 15/15/15 epochs, paper Sec. 4.1). Sampling is compared with iterating the same indices as a
plain list in the same run, the floor any sampler has to pay.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from vlm_capcurriculum.curriculum import CurriculumSampler, StageData, build_plan, parse_curriculum

SIZES = {"perception": 3200, "text_reasoning": 13000, "visual_reasoning": 16000}
EPOCHS = {"perception": 15, "text_reasoning": 15, "visual_reasoning": 15}


def spec(mode: str, order: str):
    stages = [{"name": name, "train_files": ["x"], "epochs": EPOCHS[name]} for name in SIZES]
    return parse_curriculum({"mode": mode, "batch_size": 512, "order": order, "stages": stages})


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    rng = random.Random(0)
    data = [StageData(n, tuple(rng.randrange(17) / 16 for _ in range(n))) for n in SIZES.values()]
    table = Table(title="curriculum planning at paper scale (best of 3)")
    for column in ("case", "steps", "indices", "seconds"):
        table.add_column(column, justify="right" if column != "case" else "left")
    plans = {}
    for mode, order in (
        ("staged", "shuffle"),
        ("staged", "easy_to_hard"),
        ("merged", "shuffle"),
        ("merged", "easy_to_hard"),
    ):
        seconds, plan = timed(lambda mode=mode, order=order: build_plan(spec(mode, order), data))
        plans[(mode, order)] = plan
        table.add_row(f"build_plan {mode} {order}", str(plan.total_steps), str(len(plan.indices)), f"{seconds:.3f}")
    plan = plans[("staged", "shuffle")]
    seconds, _ = timed(lambda: dataclasses.replace(plan).fingerprint)  # a fresh object: no cached digest
    table.add_row("plan fingerprint", "", str(len(plan.indices)), f"{seconds:.3f}")
    baseline, _ = timed(lambda: sum(1 for _ in list(plan.indices)))
    sampler_time, _ = timed(lambda: sum(1 for _ in CurriculumSampler(plan)))
    table.add_row("iterate: plain list (baseline)", "", str(len(plan.indices)), f"{baseline:.3f}")
    table.add_row(
        f"iterate: CurriculumSampler ({sampler_time / baseline:.1f}x baseline)",
        "",
        str(len(plan.indices)),
        f"{sampler_time:.3f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
