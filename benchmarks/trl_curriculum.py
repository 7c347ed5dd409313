"""Curriculum GRPO steps per second on CPU, per tiny family, against TRL's stock GRPOTrainer in the same run.

Run by hand (offline):  OMP_NUM_THREADS=1 python benchmarks/trl_curriculum.py [--steps 8] [--families qwen3_vl ...]

Each family trains the quick start's step (8 prompts x 5 generations, at most 32 new tokens, one optimizer step,
KL to a reference) on a warmed-up tiny model: once with ``CurriculumGRPOTrainer`` (three stages, so the timing
includes two stage transitions, but no stage checkpoints or validation) and once with the stock ``GRPOTrainer`` on the
same data, settings and rewards. Times are medians of per-step wall times after the first step; the ``overhead``
column is curriculum / stock, and ``vs qwen3_vl`` compares each family's curriculum step with the quick-start family.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if importlib.util.find_spec("vlm_capcurriculum") is None:  # run from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table
from transformers import TrainerCallback

from vlm_capcurriculum.curriculum import parse_curriculum, plan_curriculum
from vlm_capcurriculum.integrations.trl.dataset import build_dataset
from vlm_capcurriculum.integrations.trl.rewards import accuracy_reward, format_reward, reward_weights
from vlm_capcurriculum.models import FAMILIES, load_tiny
from vlm_capcurriculum.models.tiny import prepare_tiny_model

SAMPLES = Path(__file__).resolve().parents[1] / "data_recipes" / "samples"
BASELINE = "qwen3_vl"


class StepTimer(TrainerCallback):
    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        self.times.append(time.perf_counter() - self._start)


def _plan(steps: int):
    third = max(1, steps // 3)
    stages = [
        {"name": name, "train_files": [str(SAMPLES / f"{name}.jsonl")], "steps": count}
        for name, count in (("perception", third), ("text_reasoning", third), ("visual_reasoning", steps - 2 * third))
    ]
    overrides = {"reset_optimizer": True, "refresh_reference": True}
    return plan_curriculum(
        parse_curriculum({"mode": "staged", "batch_size": 8, "seed": 1, "overrides": overrides, "stages": stages})
    )


def _args(output: Path, total: int):
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(output), use_cpu=True, bf16=False, report_to="none", disable_tqdm=True,
        num_generations=5, generation_batch_size=40, per_device_train_batch_size=40, gradient_accumulation_steps=1,
        max_completion_length=32, max_steps=total, learning_rate=1e-4, lr_scheduler_type="constant", beta=0.01,
        epsilon_high=0.3, logging_steps=1, save_strategy="no", seed=1, gradient_checkpointing=False,
        disable_dropout=True, shuffle_dataset=False, reward_weights=reward_weights(0.1),
    )  # fmt: skip


def _median(times: list[float]) -> float:
    return statistics.median(times[1:] or times)


def bench(family: str, steps: int, root: Path) -> tuple[float, float]:
    from trl import GRPOTrainer

    from vlm_capcurriculum.integrations.trl.trainer import CurriculumGRPOTrainer

    data, plan = _plan(steps)
    base = prepare_tiny_model(
        family, root / family, warm_start_steps=60, records=data.records, image_paths=data.image_paths
    )
    dataset = build_dataset(data.records, data.image_paths)

    model, processor = load_tiny(base)
    ours = CurriculumGRPOTrainer(model, plan=plan, args=_args(root / f"{family}-ours", steps), train_dataset=dataset,
                                 processing_class=processor, reward_kwargs={"format_weight": 0.1})  # fmt: skip
    timer = StepTimer()
    ours.add_callback(timer)
    ours.train()
    curriculum = _median(timer.times)

    model, processor = load_tiny(base)
    processor.tokenizer.padding_side = "left"
    # The same rows in the same order (the plan's), as a plain dataset for the stock sampler.
    ordered = dataset.select(list(plan.indices))
    stock = GRPOTrainer(model=model, reward_funcs=[accuracy_reward, format_reward], args=_args(root / f"{family}-stock", steps),
                        train_dataset=ordered, processing_class=processor)  # fmt: skip
    timer = StepTimer()
    stock.add_callback(timer)
    stock.train()
    return curriculum, _median(timer.times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--families", nargs="*", default=list(FAMILIES))
    args = parser.parse_args()
    families = [BASELINE] + [family for family in args.families if family != BASELINE]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            results[family] = bench(family, args.steps, Path(tmp))
    table = Table(title=f"curriculum GRPO step on CPU (8 prompts x 5, <= 32 tokens; median of {args.steps - 1} steps)")
    for column in ("family", "curriculum s/step", "steps/s", "stock s/step", "overhead", f"vs {BASELINE}"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for family, (curriculum, stock) in results.items():
        table.add_row(
            family, f"{curriculum:.2f}", f"{1 / curriculum:.2f}", f"{stock:.2f}", f"{curriculum / stock:.2f}x",
            f"{curriculum / results[BASELINE][0]:.2f}x",
        )  # fmt: skip
    Console().print(table)
    print(f"torch threads: {os.environ.get('OMP_NUM_THREADS', 'default')}; load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
