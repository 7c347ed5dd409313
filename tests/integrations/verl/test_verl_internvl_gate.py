"""Our verl vision gate on the tiny InternVL3 / InternVL3.5 (real architecture and processor): "vision frozen" covers
the vision tower AND the multi-modal projector (the project's definition, ``vlm_capcurriculum.integrations.torch_ops``), with
verl's own ``FSDPEngine.optimizer_step``; and the same under FSDP2 ``fully_shard`` on two gloo ranks."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

pytest.importorskip("verl")

import torch
from verl_doubles import make_engine, vl_inputs

from vlm_capcurriculum.integrations import torch_ops
from vlm_capcurriculum.integrations.verl import worker as worker_ops
from vlm_capcurriculum.models import build_tiny

HERE = Path(__file__).parent
FAMILIES = ("internvl3", "internvl3_5")
VISION = ("model.vision_tower.", "model.multi_modal_projector.")


def _changed(before: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, bool]:
    return {name: not torch.equal(before[name], param.detach()) for name, param in model.named_parameters()}


@pytest.mark.parametrize("family", FAMILIES)
def test_frozen_internvl_vision_keeps_tower_and_projector_bit_identical(family: str) -> None:
    model, processor = build_tiny(family, seed=0)
    engine = make_engine(model)
    gate = worker_ops.install_vision_gate(engine)
    names = {id(param): name for name, param in model.named_parameters()}
    gated = {names[id(param)] for param in gate.parameters}
    vision = {name for name in names.values() if name.startswith(VISION)}
    assert gated == vision and any(n.startswith("model.multi_modal_projector.") for n in gated)

    gate.set_trainable(False)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    engine.optimizer_zero_grad()
    model(**vl_inputs(processor)).loss.backward()
    assert all(param.grad is None for param in gate.parameters)  # the backward stops at tower and projector
    engine.optimizer_step()  # verl's clip-and-step
    changed = _changed(before, model)
    assert not any(changed[name] for name in vision)
    assert all(changed[name] for name in changed if name.startswith("model.language_model.layers."))

    gate.set_trainable(True)  # the image reaches tower and projector again
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    engine.optimizer_zero_grad()
    model(**vl_inputs(processor, seed=1)).loss.backward()
    engine.optimizer_step()
    changed = _changed(before, model)
    assert any(changed[n] for n in vision if n.startswith(VISION[0]))
    assert any(changed[n] for n in vision if n.startswith(VISION[1]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fsdp2_rank(rank: int, world: int, port: int, out_dir: str, family: str) -> None:
    sys.path[:0] = [str(HERE), str(HERE.parents[2])]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from verl_doubles import make_engine, vl_inputs

        mesh = init_device_mesh("cpu", (world,))
        model, processor = build_tiny(family, seed=0)
        for layer in model.model.vision_tower.encoder.layer:
            fully_shard(layer, mesh=mesh)
        for layer in model.model.language_model.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)  # the class becomes FSDPInternVLForConditionalGeneration
        engine = make_engine(model)
        engine.optimizer_step = engine.optimizer.step  # verl's FSDP2 clip moves the norm to CUDA: step unclipped
        gate = worker_ops.install_vision_gate(engine)
        gate.set_trainable(False)
        before = torch_ops.gather_full_state_dict(model)
        engine.optimizer.zero_grad()
        model(**vl_inputs(processor, seed=rank)).loss.backward()
        vision_grads = any(param.grad is not None for param in gate.parameters)
        engine.optimizer_step()  # the gate's step pre-hook, then the optimizer
        after = torch_ops.gather_full_state_dict(model)
        if rank == 0:
            results = {
                "class": type(model).__name__,
                "gated": len(gate.parameters),
                "vision_grads": vision_grads,
                "steps_gated": gate.steps_gated,
                "vision_unchanged": all(torch.equal(before[k], after[k]) for k in before if k.startswith(VISION)),
                "projector_keys": sum(k.startswith(VISION[1]) for k in before),
                "language_changed": all(
                    not torch.equal(before[k], after[k]) for k in before if k.startswith("model.language_model.layers.")
                ),
            }
            with open(os.path.join(out_dir, "results.json"), "w") as handle:
                json.dump(results, handle)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_two_ranks_gate_tower_and_projector(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_fsdp2_rank, args=(2, _free_port(), str(tmp_path), "internvl3_5"), nprocs=2, join=True)
    results = json.loads((tmp_path / "results.json").read_text())
    model = build_tiny("internvl3_5", seed=0)[0]
    vision = [name for name, _ in model.named_parameters() if name.startswith(VISION)]
    assert results == {
        "class": "FSDPInternVLForConditionalGeneration",
        "gated": len(vision),
        "vision_grads": False,
        "steps_gated": 1,
        "vision_unchanged": True,
        "projector_keys": sum(name.startswith(VISION[1]) for name in vision),
        "language_changed": True,
    }
