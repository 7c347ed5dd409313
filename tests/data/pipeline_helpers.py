"""Shared pieces of the pipeline tests: small corpora on disk and scripted model answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from vlm_capcurriculum.cli import main

COLOURS = ("red", "green", "blue", "yellow", "white", "black")


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def docci_corpus(root: Path, count: int) -> tuple[Path, Path]:
    """``count`` DOCCI-format captions (``docci_descriptions.jsonlines`` columns) and their images."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        colour = COLOURS[i % len(COLOURS)]
        name = f"train_{i:05d}.jpg"
        Image.new("RGB", (24, 16), {"red": (255, 0, 0), "green": (0, 255, 0)}.get(colour, (9 * i, 40, 90))).save(
            images / name
        )
        rows.append(
            {
                "example_id": f"train_{i:05d}",
                "split": "train",
                "image_file": name,
                "description": f"Photo {i}: a {colour} mug stands to the left of a wooden box on a table.",
            }
        )
    return write_jsonl(root / "docci_descriptions.jsonlines", rows), images


def mcq_json(number: str, answer: str = "A") -> str:
    return json.dumps(
        {
            "question": f"What stands to the left of the box in photo {number}?",
            "options": {"A": "a mug", "B": "a vase", "C": "a lamp", "D": "a book"},
            "answer": answer,
        }
    )


def cli(*args: str) -> int:
    return main(["data", *args, "--no-progress"] if args[0] not in ("convert", "caption-sft") else ["data", *args])
