"""Tests of the EasyR1 backend's EasyR1-independent parts (they run in CI; the EasyR1 lane is tests/integrations/easyr1)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def sample_spec(repo_root: Path):  # type: ignore[no-untyped-def]
    from vlm_capcurriculum.curriculum import parse_curriculum

    return parse_curriculum(
        {
            "mode": "staged",
            "batch_size": 8,
            "overrides": {"reset_optimizer": True, "refresh_reference": True, "save_checkpoint": True},
            "stages": [
                {"name": "perception", "train_files": ["data_recipes/samples/perception.jsonl"], "epochs": 2,
                 "overrides": {"vision_tower": "trainable"}},
                {"name": "text_reasoning", "train_files": ["data_recipes/samples/text_reasoning.jsonl"], "epochs": 1,
                 "overrides": {"vision_tower": "frozen", "lr": 3e-7, "rollout_n": 4, "reward": {"format_weight": 0.2}}},
                {"name": "visual_reasoning", "train_files": ["data_recipes/samples/visual_reasoning.jsonl"],
                 "steps": 3, "order": "file"},
            ],
        }
    )  # fmt: skip
