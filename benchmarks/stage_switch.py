"""What a curriculum stage boundary costs on verl, and our trainer mode's per-step overhead (CPU backend, by hand).

    python benchmarks/stage_switch.py [--model tiny_qwen2_5_vl] [--output /tmp/stage_switch]

Two real verl runs of the shrunk sample plan (one epoch per stage: 3 stages x 4 steps) through the launcher with
``backend.device=cpu``; their console metrics (``step:N - key:value ...``) are parsed.

1. **Stage boundary, one run vs chained.** From the ``capcurriculum`` run: our boundary is the curriculum work at
   a stage start (``timing_s/curriculum``: gate, optimizer reset, reference refresh and snapshot) plus the stage-end
   checkpoint and HF export (``timing_s/curriculum`` of the last step of a stage; that export is also what a chained
   run needs as the next stage's model). The chained alternative ends the run and starts a new one from that export:
   Ray, workers, model and rollout start-up again, i.e. the run's start-up time (launch until the first step's
   rollout begins: wall time to the first step's end minus that step's ``timing_s/step``) plus the same export.
   Both come from the same run; the table prints seconds and the ratio.
2. **Per-step overhead of our trainer mode** vs verl's stock ``sync`` mode on the same data and config
   (``trainer.v1.trainer_mode=sync``, no curriculum operations): mean ``timing_s/step`` over the steps that start no
   stage, ratio ours / stock. The first step of each run is left out (warm-up).

Timings on a shared CPU are noisy; the ratios are what to read, and they are from runs on the same machine.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHRUNK = [
    "data=samples",
    "backend=verl",
    "backend.device=cpu",
    "curriculum.stages.0.epochs=1",
    "curriculum.stages.1.epochs=1",
    "curriculum.stages.2.epochs=1",
    "train.rollout_n=2",
    "backend.overrides.trainer.val_before_train=false",
]
STEP_LINE = re.compile(r"step:(\d+) - (.*)")
METRIC = re.compile(r"([\w/@.-]+):(?:np\.float64\()?([-+0-9.eE]+|nan|inf)\)?")


def run(output_dir: Path, model: str, *extra: str) -> tuple[float, dict[int, dict[str, float]]]:
    """Launch one run; returns (seconds from launch to the end of step 1, metrics per step)."""
    command = [sys.executable, "-m", "vlm_capcurriculum", "train", "--config", "recipes/config.yaml", *SHRUNK,
               f"model={model}", f"backend.output_dir={output_dir}", *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    start = time.monotonic()
    first_step_end: float | None = None
    steps: dict[int, dict[str, float]] = {}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        match = STEP_LINE.search(line)
        if not match or int(match.group(1)) == 0:
            continue
        step = int(match.group(1))
        steps[step] = {key: float(value) for key, value in METRIC.findall(match.group(2))}
        if step == 1:
            first_step_end = time.monotonic() - start
    if process.wait() != 0 or first_step_end is None:
        raise SystemExit(f"run in {output_dir} failed (exit {process.returncode})")
    return first_step_end, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny_qwen2_5_vl")
    parser.add_argument("--output", type=Path, default=Path("/tmp/vlmcc_stage_switch"))
    args = parser.parse_args()
    ours_start, ours = run(args.output / "capcurriculum", args.model)
    _, stock = run(args.output / "sync", args.model, "+backend.overrides.trainer.v1.trainer_mode=sync")

    stage_starts, stage_ends = [5, 9], [4, 8]  # the shrunk plan: stages at steps 1-4, 5-8, 9-12
    boundary = statistics.mean(
        ours[end]["timing_s/curriculum"] + ours[begin]["timing_s/curriculum"]
        for end, begin in zip(stage_ends, stage_starts, strict=True)
    )
    export = statistics.mean(ours[end]["timing_s/curriculum"] for end in stage_ends)
    startup = ours_start - ours[1]["timing_s/step"]
    chained = startup + export
    plain = [step for step in ours if step not in (1, *stage_starts, *stage_ends) and step in stock]
    ours_step = statistics.mean(ours[step]["timing_s/step"] for step in plain)
    stock_step = statistics.mean(stock[step]["timing_s/step"] for step in plain)

    print(f"{'measure':58} {'seconds':>9} {'ratio':>7}")
    print(f"{'stage boundary, one run (curriculum ops + export)':58} {boundary:9.2f} {1.0:7.2f}")
    print(f"{'stage boundary, chained (start-up + export)':58} {chained:9.2f} {chained / boundary:7.2f}")
    print(f"{'  of which start-up (Ray, workers, model, rollout)':58} {startup:9.2f}")
    print(f"{'step, verl stock sync mode (mean of ' + str(len(plain)) + ' steps)':58} {stock_step:9.2f} {1.0:7.2f}")
    print(f"{'step, capcurriculum mode (same steps)':58} {ours_step:9.2f} {ours_step / stock_step:7.2f}")


if __name__ == "__main__":
    main()
