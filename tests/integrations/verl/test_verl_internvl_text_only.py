"""The dummy vision forward for text-only InternVL micro-batches (``internvl.patch_text_only_vision_forward``, applied
by the verl plugin when transformers' InternVL module loads): the same loss, zero vision gradients; and on two gloo
FSDP2 ranks, one with an image and one text-only, a training step completes (unpatched, the text-only rank skips the
tower's collectives and the ranks hang)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl")

import torch

from vlm_capcurriculum.models import build_tiny

HERE = Path(__file__).parent
VISION = ("model.vision_tower.", "model.multi_modal_projector.")


def _text_only(tokenizer: Any, text: str = "a text-only maths problem") -> dict[str, torch.Tensor]:
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}


def test_text_only_forward_runs_the_tower_without_changing_the_loss() -> None:
    from transformers.models.internvl.modeling_internvl import InternVLModel

    assert getattr(InternVLModel.forward, "_vlmcc_patched", False)  # applied by the verl plugin
    model, processor = build_tiny("internvl3_5", seed=0)
    batch = _text_only(processor.tokenizer)
    patched = model(**batch).loss
    patched.backward()
    unpatched = InternVLModel.forward.__wrapped__  # type: ignore[attr-defined]
    with torch.no_grad():
        outputs = unpatched(model.model, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        expected = torch.nn.functional.cross_entropy(
            model.lm_head(outputs.last_hidden_state)[0, :-1].float(), batch["labels"][0, 1:]
        )
    assert torch.allclose(patched, expected, atol=1e-5)
    vision = [param for name, param in model.named_parameters() if name.startswith(VISION)]
    assert vision and all(param.grad is not None and not param.grad.any() for param in vision)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rank(rank: int, world: int, port: int, out_dir: str) -> None:
    sys.path[:0] = [str(HERE), str(HERE.parents[2])]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        import verl  # noqa: F401  (its plugin patches InternVLModel.forward, as in every verl worker)
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from verl_doubles import vl_inputs

        mesh = init_device_mesh("cpu", (world,))
        model, processor = build_tiny("internvl3_5", seed=0)
        for layer in model.model.vision_tower.encoder.layer:  # the tower in its own FSDP units, as verl wraps it
            fully_shard(layer, mesh=mesh)
        for layer in model.model.language_model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        batch = vl_inputs(processor) if rank == 0 else _text_only(processor.tokenizer)
        model(**batch).loss.backward()  # rank 0 with an image, rank 1 text-only
        optimizer.step()
        with torch.no_grad():  # a log-prob pass too (no grad), mixed the same way
            model(**batch)
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump({"done": True}, handle)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_fsdp_ranks_with_an_image_and_a_text_only_micro_batch(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    context = mp.spawn(_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=False)
    deadline = time.monotonic() + 240  # a collective mismatch hangs under gloo: fail instead of waiting forever
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two ranks did not finish: mismatched collectives")
    assert [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)] == [{"done": True}] * 2
