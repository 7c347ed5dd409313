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


def _packed_step(lengths: list[int]) -> tuple[object, list[torch.Tensor]]:
    """A step's samples as the workers receive them: per-sample ``(4, length)`` mrope position ids and input ids
    packed by TransferQueue's storage, then sent through Ray (consolidate + pickle)."""
    import pickle

    from tensordict import TensorDict
    from transfer_queue.storage.managers.simple_storage_manager import AsyncSimpleStorageManager as Storage

    positions = [torch.arange(length).expand(4, length) + row for row, length in enumerate(lengths)]
    fields = {
        "input_ids": Storage._pack_field_values([torch.arange(length) for length in lengths]),
        "position_ids": Storage._pack_field_values(positions),
    }
    data = TensorDict(fields, batch_size=len(lengths))
    return pickle.loads(pickle.dumps(data.consolidate())), positions


@pytest.mark.parametrize("lengths", [[7, 9, 8, 6], [8, 8, 8, 8], [8, 8]], ids=["ragged", "equal", "equal-pair"])
def test_mrope_position_ids_of_equal_length_sequences(lengths: list[int]) -> None:
    """``train_mini_batch`` (``update_actor``) and the log-prob calls run ``maybe_fix_3d_position_ids``, then split
    mini-batches and pad as the FSDP engine does; every sample's position ids must come back unchanged."""
    from verl.utils import tensordict_utils as tu
    from verl.workers import engine_workers

    assert engine_workers.maybe_fix_3d_position_ids is tu.maybe_fix_3d_position_ids  # the workers' binding is fixed
    if len(set(lengths)) == 1:  # verl 0.9.1 as released (the bug): an error, or silently wrong position ids
        data, positions = _packed_step(lengths)
        try:
            tu.maybe_fix_3d_position_ids.__wrapped__(data)
            broken = [tensor.shape for tensor in data["position_ids"].unbind()] != [p.shape for p in positions]
        except RuntimeError:
            broken = True
        assert broken

    data, positions = _packed_step(lengths)
    tu.maybe_fix_3d_position_ids(data)
    assert [tensor.tolist() for tensor in data["position_ids"].unbind()] == [p.tolist() for p in positions]
    for mini_batch in tu.make_iterator(data, mini_batch_size=2, epochs=1):
        tu.maybe_fix_3d_position_ids(mini_batch)
        nested = mini_batch["position_ids"]
        longest = int(mini_batch["input_ids"].offsets().diff().max())
        padded = torch.nested.to_padded_tensor(nested, padding=0, output_size=(2, 4, longest))
        assert nested.values().shape[0] == 4  # the (rows, total) layout the remove-padding path reads
        for row, length in enumerate(mini_batch["input_ids"].offsets().diff().tolist()):
            assert padded[row, :, :length].tolist() in [p.tolist() for p in positions]
