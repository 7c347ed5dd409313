"""How fast the tiny models run on this machine: forward+backward, generation, and real TRL GRPO steps per family.

Run by hand (CPU, offline):  python benchmarks/tiny_models.py [--steps 20] [--repeats 3]
Prints one row per family with medians over the repeats and each time's ratio to the quick-start family
(``qwen3_vl``) measured in the same run, so rows stay comparable on a busy machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if importlib.util.find_spec("vlm_capcurriculum") is None:  # run from a clone without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from datasets import Dataset
from PIL import Image
from rich.console import Console
from rich.table import Table

from vlm_capcurriculum.models import FAMILIES, build_tiny

BASELINE = "qwen3_vl"


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _image_inputs(processor) -> dict:
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is it?"}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    return processor(text=[text], images=[Image.new("RGB", (96, 72), (30, 120, 200))], return_tensors="pt")


def forward_backward_seconds(family: str, repeats: int) -> float:
    model, processor = build_tiny(family)
    inputs = _image_inputs(processor)
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model(**inputs, labels=inputs["input_ids"]).loss.backward()

    return _median_seconds(step, repeats)


def generate_seconds(family: str, repeats: int, new_tokens: int = 16) -> float:
    model, processor = build_tiny(family)
    inputs = _image_inputs(processor)

    def generate() -> None:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True)

    return _median_seconds(generate, repeats)


def _length_reward(completions: list, **_: object) -> list[float]:
    return [float(len(completion[0]["content"])) for completion in completions]


def grpo_steps_per_second(family: str, steps: int, gradient_checkpointing: bool) -> float:
    from transformers import PrinterCallback
    from trl import GRPOConfig, GRPOTrainer

    model, processor = build_tiny(family)
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What color is picture {i}?"}],
            "image": Image.new("RGB", (64 + 8 * i, 64), (40 * i, 200, 90)),
        }
        for i in range(6)
    ]
    with tempfile.TemporaryDirectory() as output_dir:
        args = GRPOConfig(
            output_dir=output_dir,
            use_cpu=True,
            bf16=False,
            report_to="none",
            per_device_train_batch_size=4,  # 2 prompts x 2 generations per step
            num_generations=2,
            max_completion_length=16,
            max_steps=steps,
            save_strategy="no",
            logging_strategy="no",
            gradient_checkpointing=gradient_checkpointing,
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=_length_reward,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=processor,
        )
        trainer.remove_callback(PrinterCallback)  # keep stdout for the table
        start = time.perf_counter()
        trainer.train()
        return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="TRL's default; off is faster here")
    args = parser.parse_args()
    families = list(dict.fromkeys([BASELINE, *args.families]))

    results = {}
    for family in families:
        grpo = statistics.median(
            grpo_steps_per_second(family, args.steps, args.gradient_checkpointing) for _ in range(args.repeats)
        )
        results[family] = (
            forward_backward_seconds(family, args.repeats * 5),
            generate_seconds(family, args.repeats),
            grpo,
            build_tiny(family)[0].num_parameters(),
        )

    base_fb, base_gen, base_grpo, _ = results[BASELINE]
    table = Table(title=f"tiny models on CPU ({torch.get_num_threads()} threads), ratios vs {BASELINE}")
    for column in ("family", "params", "fwd+bwd ms", "ratio", "generate 16 tok ms", "ratio", "GRPO steps/s", "ratio"):
        table.add_column(column, justify="right")
    for family, (fb, gen, grpo, params) in results.items():
        table.add_row(
            family,
            f"{params:,}",
            f"{fb * 1e3:.1f}",
            f"{fb / base_fb:.2f}",
            f"{gen * 1e3:.1f}",
            f"{gen / base_gen:.2f}",
            f"{grpo:.2f}",
            f"{grpo / base_grpo:.2f}",
        )
    Console(width=140).print(table)


if __name__ == "__main__":
    main()
