from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A directory with two real PNG files, ``a.png`` and ``b.png``."""
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        Image.new("RGB", (4, 4), colour).save(root / name)
    return root


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
        return path

    return write


@pytest.fixture
def make_row() -> Callable[..., dict[str, Any]]:
    """A valid row of our format with ``fields`` replaced."""
    return _good_row


def _good_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "q1",
        "capability": "perception",
        "problem": "<image>What colour is the square?",
        "images": ["a.png"],
        "answer": "A",
        "answer_type": "choice",
        "choices": {"A": "red", "B": "blue"},
        "pass_rate": 0.5,
        "source": "unit",
    }
    row.update(fields)
    return row
