"""What the verl backend adds to planning at the paper's scale (run by hand: ``python benchmarks/verl_launch.py``).

Stage sizes follow the reference runs (about 3.2k perception, 13k text and 16k visual questions, batch 512,
15/15/15 epochs), as synthetic text-only records (image checks are the core's cost, measured elsewhere). Measured
against the core's own ``plan_curriculum`` in the same run: the launcher's parquet writing, and what verl's training
process pays before step 1 (``training_order``: planning again from the JSONL files plus the row-by-row id check of
the parquet files; the driver's plan then comes from the per-process cache).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.verl import planning
from vlm_capcurriculum.integrations.verl.launch import write_stage_files

SIZES = {"perception": 3200, "text_reasoning": 13000, "visual_reasoning": 16000}
EPOCHS = {"perception": 15, "text_reasoning": 15, "visual_reasoning": 15}


def write_jsonl(directory: Path) -> dict:
    stages = []
    for name, size in SIZES.items():
        path = directory / f"{name}.jsonl"
        with path.open("w") as out:
            for i in range(size):
                record = {"id": f"{name}-{i}", "capability": name, "problem": f"Compute {i} + 1.", "answer": str(i + 1)}
                out.write(json.dumps({**record, "answer_type": "math", "pass_rate": (i % 9) / 8}) + "\n")
        stages.append({"name": name, "train_files": [str(path)], "epochs": EPOCHS[name]})
    return {"mode": "staged", "batch_size": 512, "seed": 1, "order": "shuffle", "stages": stages}


def timed(fn, repeat: int = 3):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        block = write_jsonl(directory)
        baseline, (data, plan) = timed(lambda: plan_curriculum(parse_curriculum(block), check_images=False))
        write_s, files = timed(lambda: write_stage_files(data, directory / "parquet", embed_images=False))
        names = [str(path) for path in files]

        def cold_order() -> list[int]:
            planning._plan_cached.cache_clear()
            return planning.training_order(block, names)

        order_s, order = timed(cold_order)
        assert order == list(plan.indices)
        check_s, _ = timed(lambda: planning.check_rows_match(data, names))
        cached_s, _ = timed(lambda: planning.load_plan(block))

    table = Table(title=f"verl backend at paper scale: {len(data)} records, {plan.total_steps} steps of 512")
    for column in ("what", "seconds", "x plan_curriculum"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for what, seconds in (
        ("plan_curriculum (core, baseline)", baseline),
        ("launcher: write the stage parquet files", write_s),
        ("training_order, cold (plan + id check)", order_s),
        ("  of which the id check", check_s),
        ("driver's plan after the provider (cached)", cached_s),
    ):
        table.add_row(what, f"{seconds:.3f}", f"{seconds / baseline:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
