"""Strict weight loading: the resume trap of transformers' Trainer, and our loader that closes it, on every family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from vlm_capcurriculum.integrations.trl.engine import WeightLoadError, load_weights_strict
from vlm_capcurriculum.models import FAMILIES, build_tiny

# Of the tensors that differ between two initialisations, how many the Trainer's own resume
# (load_state_dict(safetensors, strict=False)) restores: the rest silently keep their stale values.
LOADED_BY_TRAINER = {"qwen2_5_vl": 1, "internvl3": 0, "internvl3_5": 0}


@pytest.mark.parametrize("family", FAMILIES)
def test_strict_loading_restores_every_tensor(family: str, tmp_path: Path) -> None:
    trained, _ = build_tiny(family, seed=1)
    trained.save_pretrained(tmp_path)
    saved = {name: tensor.clone() for name, tensor in trained.state_dict().items()}

    stale, _ = build_tiny(family, seed=2)
    differing = [name for name, tensor in stale.state_dict().items() if not torch.equal(tensor, saved[name])]
    stock = stale.load_state_dict(load_file(tmp_path / "model.safetensors"), strict=False)  # what Trainer does
    restored = sum(torch.equal(stale.state_dict()[name], saved[name]) for name in differing)
    if family in LOADED_BY_TRAINER:
        assert restored == LOADED_BY_TRAINER[family] and stock.missing_keys, "the trap is gone: revisit load_weights_strict"
    else:
        assert restored == len(differing)  # Qwen3-VL saves under its module names

    fresh, _ = build_tiny(family, seed=2)
    load_weights_strict(fresh, tmp_path)
    assert all(torch.equal(tensor, saved[name]) for name, tensor in fresh.state_dict().items())


def test_a_checkpoint_of_another_architecture_is_an_error(tmp_path: Path) -> None:
    qwen3, _ = build_tiny("qwen3_vl")
    qwen3.save_pretrained(tmp_path)
    other, _ = build_tiny("qwen2_5_vl")
    with pytest.raises((WeightLoadError, ValueError, OSError, RuntimeError)):
        load_weights_strict(other, tmp_path)
