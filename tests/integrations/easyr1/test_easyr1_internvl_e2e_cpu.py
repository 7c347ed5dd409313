"""Tiny InternVL3 and InternVL3.5 through the sample curriculum end to end on a CPU, with EasyR1's real workers.

As ``test_easyr1_e2e_cpu.py`` runs Qwen (``cpu_harness.py``: our entry point on a local Ray, EasyR1's ``fit`` and
``FSDPWorker`` on gloo, the transformers rollout standing in for vLLM), shortened to one step per stage. The models are
the package's tiny families format warm-started as the ``tiny://`` quick starts build them, saved with the -hf
checkpoints' ``crop_to_patches: false`` so the worker's tiling fix is on the path. Checked: a real step in every stage,
InternViT *and* the projector trained in stage 1, bit-identical across the frozen stage 2 while the language model
moves, trained again in stage 3; each stage export reloads as the trained weights with the image-only processor.
"""

from __future__ import annotations

import json
from pathlib import Path

import easyr1_lane
import pytest
import torch
from test_easyr1_e2e_cpu import STAGES, _actor, _config, _harness, _model, _same, _steps

pytestmark = pytest.mark.slow

TOWER = ("model.vision_tower.", "model.multi_modal_projector.")


@pytest.fixture(scope="module", params=["internvl3", "internvl3_5"])
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_dir(family: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    easyr1_lane.register_processor()
    path = easyr1_lane.warm_tiny_model(family, tmp_path_factory.mktemp(f"tiny_{family}"))
    config_file = path / "preprocessor_config.json"
    config = json.loads(config_file.read_text())
    config["crop_to_patches"] = False  # as OpenGVLab/InternVL3*-hf: InternVLProcessor tiles in its own call
    config_file.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture(scope="module")
def staged(model_dir: Path, family: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp(f"staged_{family}")
    _harness(f"config={_config(model_dir, base, steps=1)}")
    return base / "run"


def _split(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    tower = {key: value for key, value in weights.items() if key.startswith(TOWER)}
    rest = {key: value for key, value in weights.items() if key not in tower}
    assert any(key.startswith(TOWER[1]) for key in tower) and rest
    return tower, rest


def test_tiny_internvl_trains_every_stage_with_tower_and_projector_frozen_in_stage_2(
    staged: Path, model_dir: Path
) -> None:
    from transformers import AutoProcessor

    steps = _steps(staged)
    assert [(line["step"], line["stage"]) for line in steps] == [
        (1, "perception"), (2, "text_reasoning"), (3, "visual_reasoning"),
    ]  # fmt: skip
    assert all(0.0 <= line["reward"] <= 1.0 and line["kl_loss"] is not None for line in steps)
    base = _model(model_dir)
    assert type(base).__name__ == "InternVLForConditionalGeneration"
    after = {step: _split(_actor(staged, step)) for step in (1, 2, 3)}
    base_tower = {key: base.state_dict()[key] for key in after[1][0]}
    for prefix in TOWER:  # InternViT and the projector both train in stage 1
        part = [key for key in base_tower if key.startswith(prefix)]
        assert any(not torch.equal(base_tower[key], after[1][0][key]) for key in part), prefix
    assert _same(after[1][0], after[2][0]), "tower and projector bit-identical across the frozen stage"
    assert not _same(after[1][1], after[2][1]), "the language model trains in stage 2"
    assert not _same(after[2][0], after[3][0]), "the tower trains again in stage 3"
    for name, step in zip(STAGES, (1, 2, 3), strict=True):
        folder = staged / "stages" / name
        reloaded = _model(folder).state_dict()
        for key, value in _actor(staged, step).items():
            assert torch.equal(reloaded[key], value.to(torch.bfloat16).float()), key
        assert type(AutoProcessor.from_pretrained(folder)).__name__ == "InternVLImageOnlyProcessor"
