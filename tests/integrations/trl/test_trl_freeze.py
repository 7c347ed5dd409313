"""The premise of freezing by ``requires_grad_``: AdamW with weight decay leaves a frozen tower bit-identical, moments
and all, even when the optimizer already holds moments for it (a stage that freezes without resetting the optimizer).
"""

from __future__ import annotations

import torch

from vlm_capcurriculum.integrations.torch_ops import vision_tower
from vlm_capcurriculum.models import build_tiny


def test_adamw_skips_a_frozen_tower_with_existing_moments(image) -> None:
    model, processor = build_tiny("qwen2_5_vl")
    model.train()
    text = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Colour?"}]}],
        add_generation_prompt=True,
    )
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)

    def step() -> None:
        model(**inputs, labels=inputs["input_ids"]).loss.backward()
        optimizer.step()
        model.zero_grad(set_to_none=True)  # what Trainer does after every optimizer step

    step()  # the tower now has AdamW moments
    tower = vision_tower(model)
    tower.requires_grad_(False)
    weights = {name: param.detach().clone() for name, param in tower.named_parameters()}
    moments = {
        name: {k: v.clone() for k, v in optimizer.state[param].items()} for name, param in tower.named_parameters()
    }
    lm_head = model.lm_head.weight.detach().clone()
    step()
    step()
    for name, param in tower.named_parameters():
        assert torch.equal(param, weights[name]), name
        assert all(torch.equal(optimizer.state[param][k], v) for k, v in moments[name].items()), name
    assert not torch.equal(model.lm_head.weight, lm_head)
