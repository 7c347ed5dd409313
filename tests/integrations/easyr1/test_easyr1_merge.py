"""hf_export.py's merge of the shards written by EasyR1's own FSDPCheckpointManager (CPU, gloo)."""

from __future__ import annotations

import shutil

import easyr1_lane as lane
import pytest
import torch
from transformers import AutoTokenizer, GenerationConfig, Qwen2_5_VLForConditionalGeneration
from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

from vlm_capcurriculum.integrations.easyr1 import hf_export
from vlm_capcurriculum.integrations.easyr1.layout import has_weights

pytestmark = pytest.mark.usefixtures("process_group")


@pytest.fixture(scope="module")
def easyr1_checkpoint(tmp_path_factory, model_config, tokenizer, batch):
    """`global_step_2/actor` as EasyR1 writes it (save_model_only: EasyR1's full save needs CUDA RNG state)."""
    fsdp_module = lane.wrap_fsdp(lane.build_model(model_config), use_orig_params=False)
    actor, optimizer, scheduler = lane.build_actor(fsdp_module)
    for _ in range(2):
        lane.train_step(actor, scheduler, batch)
    fsdp_module.module.generation_config = GenerationConfig(eos_token_id=[7, 8], temperature=0.7, do_sample=True)
    manager = FSDPCheckpointManager(
        model=fsdp_module, optimizer=optimizer, lr_scheduler=scheduler, processing_class=tokenizer
    )
    actor_dir = tmp_path_factory.mktemp("ckpt") / "global_step_2" / "actor"
    manager.save_checkpoint(str(actor_dir), save_model_only=True)
    return actor_dir, lane.full_state(fsdp_module)


def test_reference_scripts_handover_has_no_weights_and_we_merge_it(easyr1_checkpoint, tmp_path, tokenizer):
    actor_dir, weights = easyr1_checkpoint
    handed_over = actor_dir / "huggingface"  # what the reference one-shot script passes to stage 2
    assert (handed_over / "config.json").is_file() and not has_weights(handed_over)

    model_dir = hf_export.merge_actor_checkpoint(actor_dir, tmp_path / "stage_1")

    assert model_dir == (tmp_path / "stage_1").absolute() and has_weights(model_dir)
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_dir, torch_dtype="auto")
    assert loaded.dtype == torch.bfloat16
    state = loaded.state_dict()
    assert all(torch.equal(state[key], value.to(torch.bfloat16)) for key, value in weights.items())
    generation = GenerationConfig.from_pretrained(model_dir)
    assert (generation.eos_token_id, generation.temperature) == ([7, 8], 0.7)
    assert AutoTokenizer.from_pretrained(model_dir).get_vocab() == tokenizer.get_vocab()


def test_float32_merge_reproduces_the_logits(easyr1_checkpoint, tmp_path, model_config, batch):
    actor_dir, weights = easyr1_checkpoint
    out = hf_export.merge_actor_checkpoint(actor_dir, tmp_path / "fp32", dtype=torch.float32)
    loaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(out).eval()
    original = lane.build_model(model_config)
    original.load_state_dict(weights)
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).logits, original(**inputs).logits)


def test_incomplete_or_foreign_checkpoints_fail_clearly(easyr1_checkpoint, tmp_path):
    actor_dir, _ = easyr1_checkpoint
    broken = tmp_path / "actor"
    shutil.copytree(actor_dir, broken)
    shutil.copy(broken / "model_world_size_1_rank_0.pt", broken / "model_world_size_2_rank_0.pt")
    with pytest.raises(hf_export.CheckpointError, match="world sizes"):
        hf_export.find_shards(broken)
    (broken / "model_world_size_1_rank_0.pt").unlink()
    with pytest.raises(hf_export.CheckpointError, match=r"ranks \[1\]"):
        hf_export.find_shards(broken)
    with pytest.raises(hf_export.CheckpointError, match="no EasyR1 model shards"):
        hf_export.find_shards(tmp_path)
    lora = tmp_path / "lora_actor"
    shutil.copytree(actor_dir, lora)
    (lora / "lora_adapter").mkdir()
    with pytest.raises(hf_export.CheckpointError, match="LoRA"):
        hf_export.merge_actor_checkpoint(lora, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_hybrid_sharded_checkpoint_merges(tmp_path):
    """HSDP as EasyR1 builds it with worker.actor.fsdp.fsdp_size: a ("ddp", "fsdp") mesh of 2 x 2 processes."""
    lane.run_distributed(lane.hybrid_shard_scenario, 4, str(tmp_path))
    results = torch.load(tmp_path / "results.pt", weights_only=False)
    assert results["mesh"] == ("ddp", "fsdp") and results["merged_equals_full"]
