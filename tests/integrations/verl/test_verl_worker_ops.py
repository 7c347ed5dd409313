"""Worker-side stage operations on a real tiny Qwen2.5-VL, verl's own optimizer, LR scheduler and
``FSDPEngine.optimizer_step``; the FSDP2 paths run on two CPU ranks (gloo)."""

from __future__ import annotations

import copy
import json
import os
import socket
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("verl")

import torch
from verl_doubles import make_engine, vl_inputs

from vlm_capcurriculum.integrations import torch_ops
from vlm_capcurriculum.integrations.verl import worker as worker_ops
from vlm_capcurriculum.integrations.verl.worker import CapCurriculumActorRolloutRefWorker, EngineOperationError
from vlm_capcurriculum.models import build_tiny, build_tiny_processor

HERE = Path(__file__).parent


def _train_step(engine: Any, processor: Any, seed: int = 0) -> float:
    engine.optimizer_zero_grad()
    engine.module(**vl_inputs(processor, seed=seed)).loss.backward()
    return engine.optimizer_step()


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: param.detach().clone() for name, param in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: torch.nn.Module, prefix: str) -> list[bool]:
    return [not torch.equal(before[n], p) for n, p in module.named_parameters() if n.startswith(prefix)]


def test_vision_gate_covers_the_qwen2_5_vl_tower(tiny_vl_model: Any) -> None:
    gate = worker_ops.install_vision_gate(make_engine(tiny_vl_model))
    assert gate.tower.modules == (tiny_vl_model.model.visual,)
    assert len(gate.parameters) == len(list(tiny_vl_model.model.visual.parameters()))


def test_text_only_model_is_refused() -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    with pytest.raises(TypeError, match="no known vision tower layout for Qwen2ForCausalLM"):
        worker_ops.install_vision_gate(make_engine(model))


def test_frozen_tower_is_bit_identical_and_excluded_from_clip(tiny_vl_model: Any, tiny_processor: Any) -> None:
    engine = make_engine(tiny_vl_model)
    gate = worker_ops.install_vision_gate(engine)
    assert worker_ops.install_vision_gate(engine) is gate  # installed once

    gate.set_trainable(False)
    before = _snapshot(tiny_vl_model)
    engine.optimizer_zero_grad()
    tiny_vl_model(**vl_inputs(tiny_processor)).loss.backward()
    tower_ids = {id(p) for p in gate.parameters}
    language_grads = [p.grad for p in tiny_vl_model.parameters() if id(p) not in tower_ids]
    expected_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in language_grads]))
    assert all(p.grad is None for p in gate.parameters)  # the backward stops at the tower's output
    grad_norm = engine.optimizer_step()  # verl's FSDPEngine.optimizer_step: clip, then AdamW step
    assert grad_norm == pytest.approx(expected_norm.item(), rel=1e-5)
    assert not any(_changed(before, tiny_vl_model, "model.visual."))
    assert all(_changed(before, tiny_vl_model, "model.language_model."))
    assert gate.steps_gated == 1

    gate.set_trainable(True)  # a later stage makes it trainable again
    before = _snapshot(tiny_vl_model)
    _train_step(engine, tiny_processor, seed=1)
    assert all(_changed(before, tiny_vl_model, "model.visual."))


def test_learning_rate_change_mid_warmup_survives_checkpoint(tiny_vl_model: Any, tiny_processor: Any) -> None:
    engine = make_engine(tiny_vl_model, lr=1e-2, warmup_steps=4)
    for _ in range(2):
        engine.lr_scheduler_step()
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 * 2 / 4)
    current = torch_ops.set_base_lr(engine.optimizer, engine.lr_scheduler, 4e-3)
    assert current == [pytest.approx(4e-3 * 2 / 4)]  # warm-up continues from where it was, at the new rate
    assert engine.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3 * 2 / 4)
    assert engine.lr_scheduler_step() == pytest.approx(4e-3 * 3 / 4)
    assert engine.lr_scheduler_step() == pytest.approx(4e-3)

    state = engine.lr_scheduler.state_dict()  # what verl's checkpoint manager saves in extra_state
    restored = make_engine(copy.deepcopy(tiny_vl_model), lr=1e-2, warmup_steps=4)
    restored.lr_scheduler.load_state_dict(state)
    assert restored.lr_scheduler_step() == pytest.approx(4e-3)


def test_a_stage_warm_up_restarts_from_the_stage_start_and_survives_checkpoint(
    tiny_vl_model: Any, tiny_processor: Any
) -> None:
    engine = make_engine(tiny_vl_model, lr=1e-2)  # verl's constant schedule without warm-up
    for _ in range(3):
        assert engine.lr_scheduler_step() == pytest.approx(1e-2)
    # the stage started 1 step ago and warms up over 4 updates: the next update is its second (lr x 1/4)
    assert torch_ops.set_stage_warmup(engine.optimizer, engine.lr_scheduler, 1, 4) == [pytest.approx(1e-2 / 4)]
    current = torch_ops.set_base_lr(engine.optimizer, engine.lr_scheduler, 4e-3)  # the stage's lr too
    assert current == [pytest.approx(4e-3 / 4)]
    assert [engine.lr_scheduler_step() for _ in range(4)] == [pytest.approx(4e-3 * f) for f in (0.5, 0.75, 1, 1)]
    state = engine.lr_scheduler.state_dict()  # verl's checkpoint manager saves it: plain numbers, no closure
    restored = make_engine(copy.deepcopy(tiny_vl_model), lr=1e-2)
    restored.lr_scheduler.load_state_dict(state)
    torch_ops.set_stage_warmup(restored.optimizer, restored.lr_scheduler, 5, 4)  # the driver re-applies on resume
    assert restored.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3)


def test_reset_optimizer_forgets_moments(tiny_vl_model: Any, tiny_processor: Any) -> None:
    engine = make_engine(tiny_vl_model)
    _train_step(engine, tiny_processor)
    param = next(tiny_vl_model.parameters())
    assert engine.optimizer.state[param]["step"] == 1
    assert torch_ops.reset_optimizer_state(engine.optimizer) == len(list(tiny_vl_model.parameters()))
    assert len(engine.optimizer.state) == 0
    lr = engine.optimizer.param_groups[0]["lr"]
    _train_step(engine, tiny_processor)
    assert engine.optimizer.state[param]["step"] == 1 and engine.optimizer.param_groups[0]["lr"] == lr


def test_worker_methods_on_verl_engines(tiny_vl_model: Any, tiny_processor: Any, tmp_path: Path) -> None:
    """The ``curriculum_*`` methods of our worker class, called as the worker group would, on verl engine objects."""
    actor = make_engine(tiny_vl_model)
    reference = make_engine(build_tiny("qwen2_5_vl", seed=1)[0].to(torch.bfloat16))
    worker = object.__new__(CapCurriculumActorRolloutRefWorker)
    worker.role = "actor_rollout_ref"
    worker.actor, worker.ref = SimpleNamespace(engine=actor), SimpleNamespace(engine=reference)

    result = worker.curriculum_set_vision_trainable(False)
    assert result["trainable"] is False
    assert result["vision_parameters"] == sum(p.numel() for p in tiny_vl_model.model.visual.parameters())
    assert worker.curriculum_set_lr(5e-3) == [pytest.approx(5e-3)]
    assert worker.curriculum_set_max_grad_norm(0.5) == 0.5 and actor.optimizer_config.clip_grad == 0.5
    _train_step(actor, tiny_processor)
    assert worker.curriculum_reset_optimizer() > 0

    saved = tmp_path / "curriculum" / "reference_s.pt"
    assert worker.curriculum_refresh_reference(str(saved)) == len(tiny_vl_model.state_dict())
    for (name, a), (_, r) in zip(
        tiny_vl_model.state_dict().items(), reference.module.state_dict().items(), strict=True
    ):
        assert torch.equal(a.to(torch.bfloat16), r), name
    fresh = make_engine(build_tiny("qwen2_5_vl", seed=2)[0])
    worker.ref = SimpleNamespace(engine=fresh)
    worker.curriculum_load_reference(str(saved))
    assert all(
        torch.equal(a, b.float())
        for a, b in zip(fresh.module.state_dict().values(), reference.module.state_dict().values(), strict=True)
    )

    worker.ref = None
    with pytest.raises(EngineOperationError, match="use_kl_loss=true"):
        worker.curriculum_refresh_reference(None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fsdp2_rank(rank: int, world: int, port: int, out_dir: str) -> None:
    """One of two ranks: FSDP2-sharded actor and bf16 reference, as verl's fsdp2 strategy builds them."""
    sys.path[:0] = [str(HERE), str(HERE.parents[2])]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard
        from verl.trainer.config.config import CheckpointConfig
        from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
        from verl_doubles import make_engine, vl_inputs

        mesh = init_device_mesh("cpu", (world,))

        def shard(model: torch.nn.Module) -> torch.nn.Module:
            for block in model.model.visual.blocks:
                fully_shard(block, mesh=mesh)
            for layer in model.model.language_model.layers:
                fully_shard(layer, mesh=mesh)
            fully_shard(model, mesh=mesh)
            return model

        processor = build_tiny_processor("qwen2_5_vl")
        actor_model = shard(build_tiny("qwen2_5_vl", seed=0)[0])
        actor = make_engine(actor_model)
        # verl's FSDP2 branch of optimizer_step moves the norm to get_device_id() (CUDA): step without clipping
        actor.optimizer_step = actor.optimizer.step
        reference = make_engine(shard(build_tiny("qwen2_5_vl", seed=1)[0].to(torch.bfloat16)))
        actor.checkpoint_manager = FSDPCheckpointManager(
            model=actor_model,
            optimizer=actor.optimizer,
            lr_scheduler=actor.lr_scheduler,
            processing_class=processor.tokenizer,
            checkpoint_config=CheckpointConfig(save_contents=["model"]),
        )
        worker = object.__new__(CapCurriculumActorRolloutRefWorker)
        worker.role = "actor_rollout_ref"
        worker.actor, worker.ref = SimpleNamespace(engine=actor), SimpleNamespace(engine=reference)

        results: dict[str, Any] = {}
        worker.curriculum_set_vision_trainable(False)
        results["tower_params_are_dtensors"] = all(
            type(p).__name__ == "DTensor" for p in worker_ops.install_vision_gate(actor).parameters
        )
        before = torch_ops.gather_full_state_dict(actor_model)
        actor.optimizer.zero_grad()
        actor_model(**vl_inputs(processor, seed=rank)).loss.backward()  # different data per rank
        actor.optimizer_step()  # the gate, then the optimizer
        after = torch_ops.gather_full_state_dict(actor_model)
        if rank == 0:
            results["tower_unchanged"] = all(torch.equal(before[k], after[k]) for k in before if ".visual." in k)
            results["language_changed"] = all(
                not torch.equal(before[k], after[k]) for k in before if ".language_model.layers." in k
            )
        worker.curriculum_refresh_reference(os.path.join(out_dir, "reference.pt"))
        ref_full = torch_ops.gather_full_state_dict(reference.module)
        if rank == 0:
            results["reference_equals_policy"] = all(
                torch.equal(after[k].to(torch.bfloat16), ref_full[k]) for k in after
            )
        hf_dir = worker.curriculum_save_hf_model(os.path.join(out_dir, "stage_perception"), 3)
        results["manager_rotation_untouched"] = actor.checkpoint_manager.previous_saved_paths == []
        if rank == 0:
            results["hf_dir"] = hf_dir
            with open(os.path.join(out_dir, "results.json"), "w") as handle:
                json.dump(results, handle)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_fsdp2_two_ranks_freeze_refresh_and_hf_export(tmp_path: Path) -> None:
    """Real sharding (two gloo ranks, FSDP2 ``fully_shard``): the gate on DTensor parameters, the actor-to-reference
    copy (rank-0 gather, broadcast into bf16 shards) and the stage-end Hugging Face export through verl's
    ``FSDPCheckpointManager``, reloaded with ``from_pretrained``."""
    import torch.multiprocessing as mp
    from transformers import Qwen2_5_VLForConditionalGeneration

    mp.spawn(_fsdp2_rank, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results == {
        "tower_params_are_dtensors": True,
        "tower_unchanged": True,
        "language_changed": True,
        "reference_equals_policy": True,
        "manager_rotation_untouched": True,
        "hf_dir": str(tmp_path / "stage_perception" / "huggingface"),
    }
    exported = Qwen2_5_VLForConditionalGeneration.from_pretrained(results["hf_dir"])
    reference = torch.load(tmp_path / "reference.pt", weights_only=True)
    exported_weights = exported.state_dict()
    assert set(reference) <= set(exported_weights)
    for name, tensor in reference.items():
        assert torch.equal(exported_weights[name].to(torch.bfloat16), tensor), name


def test_missing_reference_snapshot_is_an_error(tiny_vl_model: Any, tmp_path: Path) -> None:
    with pytest.raises(EngineOperationError, match="no saved weights at"):
        worker_ops.load_weights(tiny_vl_model, tmp_path / "absent.pt")
