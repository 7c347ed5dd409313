from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from vlm_capcurriculum.integrations.torch_ops import vision_tower
from vlm_capcurriculum.models import FAMILIES, build_tiny

TOWER_PREFIXES = {
    "qwen2_5_vl": ("model.visual",),
    "qwen3_vl": ("model.visual",),
    "internvl3": ("model.vision_tower", "model.multi_modal_projector"),
    "internvl3_5": ("model.vision_tower", "model.multi_modal_projector"),
}
# The language model (decoder stack and output head), the same modules on every family.
LM_PREFIXES = ("model.language_model", "lm_head")
# The module that maps vision features into the LM's embedding space must be inside the tower on every family.
PROJECTOR_PARAMETER = {
    "qwen2_5_vl": "model.visual.merger.mlp.0.weight",
    "qwen3_vl": "model.visual.merger.linear_fc1.weight",
    "internvl3": "model.multi_modal_projector.linear_1.weight",
    "internvl3_5": "model.multi_modal_projector.linear_1.weight",
}


@pytest.mark.parametrize("family", FAMILIES)
def test_tower_is_a_proper_subset_disjoint_from_the_lm(family: str) -> None:
    model, _ = build_tiny(family)
    tower = vision_tower(model)
    assert tower.prefixes == TOWER_PREFIXES[family]
    names = dict(model.named_parameters())
    tower_names = {name for name, _ in tower.named_parameters()}
    assert tower_names and tower_names < names.keys()
    assert all(param is names[name] for name, param in tower.named_parameters())
    assert PROJECTOR_PARAMETER[family] in tower_names
    assert all(tower.owns(name) for name in tower_names)
    lm_names = {n for n in names if any(n == p or n.startswith(p + ".") for p in LM_PREFIXES)}
    assert "lm_head.weight" in lm_names
    assert not tower_names & lm_names
    # Tower and LM partition the model: no parameter belongs to neither.
    assert tower_names | lm_names == names.keys()
    assert not tower.owns("model.visualx.weight") and not tower.owns("model.language_model.embed_tokens.weight")


@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_tower_gets_no_gradient(family: str, conversation: list[dict], image: Image.Image) -> None:
    model, processor = build_tiny(family)
    tower = vision_tower(model)
    tower.requires_grad_(False)
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    model.train()
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    tower_ids = {id(p) for p in tower.parameters()}
    for name, param in model.named_parameters():
        if id(param) in tower_ids:
            assert param.grad is None and not param.requires_grad, name
        else:
            assert param.grad is not None, name
    tower.requires_grad_(True)
    assert all(p.requires_grad for p in tower.parameters())


def test_rejects_unknown_models() -> None:
    with pytest.raises(TypeError, match="Qwen3VLForConditionalGeneration"):
        vision_tower(nn.Linear(2, 2))


def test_works_on_the_vision_parameters_only() -> None:
    model, _ = build_tiny("qwen3_vl")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tower = vision_tower(model)
    with torch.no_grad():
        for param in tower.parameters():
            param.add_(1.0)
    for name, param in model.named_parameters():
        assert torch.equal(param, before[name]) != tower.owns(name), name
