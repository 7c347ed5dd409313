"""Benchmark fixtures and a scripted model for the evaluation tests (a module of its own, imported by name)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image

from vlm_capcurriculum.cli import main

# The data tests' loopback server (tests/data has no package: its folder goes on the path, as pytest does for it).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from fault_server import FaultServer

__all__ = ["FaultServer", "benchmarks", "cli", "read_jsonl", "scripted", "write_jsonl"]


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cli(*args: str) -> int:
    return main([*args, "--no-progress"]) if args[0] in ("eval",) else main(list(args))


def benchmarks(root: Path) -> tuple[Path, Path, Path]:
    """Two benchmarks in our record schema: ``mathbench`` (text, numbers) and ``pope`` (image yes/no as choices),
    plus their image folder. The scripted model below answers them so that mathbench scores 3/5 and pope 2/4."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name, colour in (("a.png", (255, 0, 0)), ("b.png", (0, 0, 255))):
        Image.new("RGB", (12, 8), colour).save(images / name)
    math_rows = [
        {
            "id": f"m{i}",
            "capability": "text_reasoning",
            "problem": f"What is {i} + {i}?",
            "answer": str(2 * i),
            "answer_type": "number",
            "source": "mathbench",
        }
        for i in range(1, 6)
    ]
    pope_rows = [
        {
            "id": f"p{i}",
            "capability": "perception",
            "problem": f"<image>Question {i}: is there a red object?",
            "images": ["a.png" if i % 2 else "b.png"],
            "answer": "A" if i % 2 else "B",
            "answer_type": "choice",
            "choices": {"A": "yes", "B": "no"},
            "source": "pope",
        }
        for i in range(1, 5)
    ]
    return write_jsonl(root / "mathbench.jsonl", math_rows), write_jsonl(root / "pope.jsonl", pope_rows), images


def scripted(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    """mathbench: m1, m2 right in the format, m3 right without a box (lenient extraction credits it), m4 wrong,
    m5 no answer at all. pope: p1 right, p2 wrong, p3 right, p4 wrong (after a last-box flip-flop)."""
    if "What is" in text:
        i = int(text.split("What is ")[1].split(" ")[0])
        return {
            1: "<think>1 and 1 make 2</think> \\boxed{2}",
            2: "<think>2 + 2</think> The answer is \\boxed{4}.",
            3: "<think>3 + 3 = 6</think> The answer is 6.",
            4: "<think>4 + 4 = 9</think> \\boxed{9}",
            5: "<think>I cannot tell</think>",
        }[i]
    i = int(text.split("Question ")[1].split(":")[0])
    return {
        1: "<think>the object is red</think> \\boxed{A}",
        2: "<think>looks red</think> \\boxed{A}",
        3: "<think>red</think> \\boxed{yes}",
        4: "<think>maybe</think> \\boxed{B} no wait \\boxed{A}",
    }[i]
