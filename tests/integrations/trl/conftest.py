"""Fixtures for the TRL backend tests. Everything runs offline on CPU; tiny base models are built once per session
(with the format warm-start, so rewards vary and GRPO updates are real) and copied per test."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it

from collections.abc import Callable, Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from PIL import Image
from trl_helpers import WARM_START_STEPS, small_plan


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models run thousands of small ops: one intra-op thread is fastest, and two contend badly on a busy
    machine (the same GRPO step measured 1.0 to 4.7 s with two threads, 1.2 to 2.3 s with one)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def image() -> Image.Image:
    return Image.new("RGB", (90, 70), (200, 40, 90))


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``tiny_base(family)``: a warmed-up tiny base model directory (built once per session and family)."""
    from vlm_capcurriculum.models.tiny import prepare_tiny_model

    root = tmp_path_factory.mktemp("tiny-bases")
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            data, _ = small_plan()
            built[family] = prepare_tiny_model(
                family,
                root / family,
                warm_start_steps=WARM_START_STEPS,
                records=data.records,
                image_paths=data.image_paths,
            )
        return built[family]

    return get
