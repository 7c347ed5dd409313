"""InternVL3/3.5 on EasyR1 (internvl.py, worker.py): tiny random models of both with their real processors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import easyr1_lane as lane
import internvl_lane
import pytest
import torch

from vlm_capcurriculum.integrations import torch_ops
from vlm_capcurriculum.integrations.easyr1 import internvl

FAMILIES = internvl_lane.FAMILIES


@pytest.fixture(scope="module", params=FAMILIES)
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return internvl_lane.save_model_dir(request.param, tmp_path_factory.mktemp(request.param) / "model")


def _in_fresh_interpreter(script: str) -> str:
    """Run with the vLLM stand-in (verl.workers.fsdp_workers imports vLLM); returns the last stdout line."""
    here = os.path.dirname(__file__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    prelude = "import lane_placeholders\nlane_placeholders.install('vllm', 'qwen_vl_utils')\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1]


def test_easyr1_loads_processor_and_model_class(model_dir: Path) -> None:
    from transformers import AutoConfig, AutoModelForImageTextToText

    model, processor = internvl_lane.load(model_dir)
    assert internvl.is_internvl_processor(processor) and type(processor).__name__ == "InternVLImageOnlyProcessor"
    assert processor.image_processor.crop_to_patches is False  # as saved by the -hf checkpoints
    config = AutoConfig.from_pretrained(model_dir)
    # FSDPWorker._build_model_optimizer picks the auto class this way (no remote code)
    assert type(config) in AutoModelForImageTextToText._model_mapping
    assert internvl.is_internvl(config) and internvl.is_internvl(model)
    assert type(model).__name__ == "InternVLForConditionalGeneration"


def test_prompt_tiles_equal_training_tiles(model_dir: Path, tmp_path: Path) -> None:
    internvl_lane.write_dataset(tmp_path)
    line = _in_fresh_interpreter(
        f"""
        import json, internvl_lane
        print(json.dumps(internvl_lane.worker_inputs_scenario({str(model_dir)!r}, {str(tmp_path)!r})))
        """
    )
    results = json.loads(line)
    prompt_tokens = results["prompt_tokens"]
    assert prompt_tokens[0] > prompt_tokens[2] and prompt_tokens[1] > prompt_tokens[2]  # several tiles vs one
    # EasyR1 as installed: one tile per image where the prompt has several -> the model refuses the pair
    stock = results["stock"]
    assert stock["feature_tokens"][:2] != prompt_tokens[:2]
    assert all("Image features and image tokens do not match" in outcome for outcome in stock["forward"][:2])
    # with our worker: the processor's own tiling, only model inputs (no `num_patches`), and the forward runs
    ours = results["ours"]
    assert ours["feature_tokens"] == prompt_tokens
    assert ours["keys"] == ["pixel_values"] and ours["processor_restored"]
    assert ours["forward"] == ["ok"] * len(prompt_tokens)


def test_padding_free_patch_uses_the_language_models_patch(model_dir: Path) -> None:
    from transformers import AutoConfig

    text_type = AutoConfig.from_pretrained(model_dir).get_text_config().model_type
    line = _in_fresh_interpreter(
        f"""
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
        from verl.models.monkey_patch import apply_ulysses_patch
        from verl.models.transformers.flash_attention_utils import flash_attention_forward
        from vlm_capcurriculum.integrations.easyr1 import internvl
        try:
            apply_ulysses_patch("internvl")
            refused = False
        except NotImplementedError:
            refused = True
        internvl.padding_free_patch(apply_ulysses_patch, lambda: {text_type!r})("internvl")
        print(refused, ALL_ATTENTION_FUNCTIONS["flash_attention_2"] is flash_attention_forward)
        """
    )
    assert line == "True True"  # EasyR1 alone refuses internvl; the patch installs its varlen attention


def test_padding_free_forward_equals_one_sequence_at_a_time(model_dir: Path) -> None:
    """The packed forward EasyR1 runs with padding_free (one row, position ids restarting per sequence, all images'
    tiles concatenated) gives each sequence the log-probs it gets alone: the varlen attention keeps the sequences
    apart and the image features land on their own prompt's <IMG_CONTEXT> tokens. flash-attn's varlen kernel is
    replaced by the same computation in torch (the lane has no flash-attn); the model runs in bf16 as under FSDP."""
    line = _in_fresh_interpreter(
        f"""
        import json, internvl_lane
        print(json.dumps(internvl_lane.padding_free_scenario({str(model_dir)!r})))
        """
    )
    results = json.loads(line)
    assert results["attention"] == "flash_attention_2" and results["tokens"] > 60
    assert results["max_abs_diff"] < 0.05 and results["label_logprob_diff"] < 0.02, results


def test_ulysses_is_refused_for_internvl() -> None:
    internvl.check_ulysses(1)
    with pytest.raises(internvl.InternVLUnsupportedError, match=r"ulysses_size=2.*not wired for InternVL"):
        internvl.check_ulysses(2)


def test_wrap_policy_patch_gives_layer_units_and_freezes_tower_and_projector(model_dir: Path) -> None:
    from verl.utils.fsdp_utils import get_fsdp_wrap_policy

    model, _ = internvl_lane.load(model_dir)
    assert model._no_split_modules == []  # transformers 4.x: EasyR1 would wrap the whole model as one unit
    calls: list[str] = []
    fsdp_config = types.SimpleNamespace(use_orig_params=False)
    policy = internvl.wrap_policy_patch(
        get_fsdp_wrap_policy, freeze=lambda: True, fsdp_config=fsdp_config, log=calls.append
    )
    policy(model)
    text_layer = type(model.model.language_model.layers[0]).__name__
    assert sorted(model._no_split_modules) == sorted(["InternVLVisionLayer", text_layer])
    assert fsdp_config.use_orig_params is True and calls[0].startswith("InternVL prepared")
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
    tower = {
        name
        for name, _ in model.named_parameters()
        if name.startswith(("model.vision_tower.", "model.multi_modal_projector."))
    }
    assert frozen == tower and any(name.startswith("model.multi_modal_projector.") for name in tower)


def test_vision_gate_keeps_tower_and_projector_bit_identical(model_dir: Path, process_group: None) -> None:
    model, processor = internvl_lane.load(model_dir)
    internvl.prepare_model(model, freeze=False)
    fsdp_module = lane.wrap_fsdp(model, use_orig_params=True, param_dtype=torch.float32)
    actor, optimizer, scheduler = lane.build_actor(fsdp_module)
    batches = [internvl_lane.image_batch(processor, (120, 60)), internvl_lane.text_batch(processor)]
    lane.train_step(actor, scheduler, batches[0])  # the tower has optimizer state before it is frozen
    gate = torch_ops.VisionTowerGate(fsdp_module, optimizer)
    assert gate.tower.prefixes == ("model.vision_tower", "model.multi_modal_projector")
    gate.set_trainable(False)
    before = lane.full_state(fsdp_module)
    for batch in batches * 2:
        lane.train_step(actor, scheduler, batch)
    after = lane.full_state(fsdp_module)
    tower = [key for key in before if key.startswith(("model.vision_tower.", "model.multi_modal_projector."))]
    assert tower and all(torch.equal(before[key], after[key]) for key in tower)
    text = [key for key in before if key.startswith("model.language_model.")]
    assert all(not torch.equal(before[key], after[key]) for key in text)
    gate.set_trainable(True)
    lane.train_step(actor, scheduler, batches[0])
    again = lane.full_state(fsdp_module)
    assert any(not torch.equal(after[key], again[key]) for key in tower)


def test_text_only_micro_batch_on_one_rank_and_image_on_the_other(model_dir: Path, tmp_path: Path) -> None:
    lane.run_distributed(internvl_lane.mixed_micro_batch_scenario, 2, str(model_dir), str(tmp_path))
    results = torch.load(tmp_path / "results.pt", weights_only=False)
    assert results["prepared"]["dummy_vision_forward"]
    # the tower's layers are FSDP units of their own (the reason ranks must agree on running it)
    assert "InternVLVisionLayer" in results["units"] and len(results["units"]) >= 3
    assert all(torch.isfinite(torch.tensor(results["grad_norms"])))
    tower = {key for key in results["keys"] if key.startswith(("model.vision_tower.", "model.multi_modal_projector."))}
    assert tower & results["changed"]  # rank 0's image gradients reached the tower through both ranks
