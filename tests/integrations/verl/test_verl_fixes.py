"""The verl bugs our plugin fixes for users (``verl_fixes``), each on verl's own function with a tiny real model.

Each test fails without the fix: the entry point (``verl.plugins``) replaces the function when verl imports its
module, and ``__wrapped__`` is verl's original, which still shows the bug.
"""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("verl")


def test_text_only_embeds_on_qwen2_5_vl_with_transformers_5() -> None:
    from verl.models.transformers import qwen2_vl

    from vlm_capcurriculum.models import build_tiny

    model, processor = build_tiny("qwen2_5_vl")
    ids = processor.tokenizer("a text-only prompt", return_tensors="pt")["input_ids"]
    with pytest.raises(AttributeError, match="mean"):  # verl 0.9.1 as released (the bug)
        qwen2_vl._get_input_embeds.__wrapped__(model.model, ids)
    embeds, _ = qwen2_vl._get_input_embeds(model.model, ids)
    assert torch.equal(embeds, model.model.get_input_embeddings()(ids))  # + 0 x the dummy tower output
    embeds.sum().backward()  # the tower is in the graph (every FSDP rank runs it): it gets (zero) gradients
    grads = [p.grad for p in model.model.visual.parameters() if p.grad is not None]
    assert grads and all(torch.count_nonzero(g) == 0 for g in grads)


def test_model_build_with_trl_1_installed() -> None:
    from verl.models.transformers import monkey_patch

    from vlm_capcurriculum.integrations.verl.verl_fixes import _trl_has_value_head

    pytest.importorskip("trl")
    if _trl_has_value_head():
        pytest.skip("this TRL still has AutoModelForCausalLMWithValueHead: verl's import works")
    assert monkey_patch.is_trl_available() is False  # verl's import of the removed class is skipped
