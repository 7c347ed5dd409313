"""Fixtures for the model tests. Everything here must work without network access: offline mode is switched on
before any test runs (and for subprocesses through the environment), so an attempted download fails loudly."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it, when this conftest is the first to import it

import huggingface_hub.constants
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; another test module may have imported it first.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture
def image() -> Image.Image:
    """A non-square (landscape) image, so smart-resize and tiling both have work to do."""
    return Image.new("RGB", (90, 70), (200, 40, 90))


@pytest.fixture
def conversation() -> list[dict]:
    """One user turn with an image placeholder and a question, as TRL builds prompts."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many circles are there?"}]}]
