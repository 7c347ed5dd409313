"""InternVL on verl at plan time: what is refused (Ulysses > 1, remote-code checkpoints) and the training guard."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("verl")

from vlm_capcurriculum.integrations.verl.internvl import (
    RUNTIME_GAPS,
    InternVLConfigError,
    check_internvl,
    is_internvl,
    refuse_training,
)

NATIVE = "actor_rollout_ref.model.path=OpenGVLab/InternVL3_5-8B-HF"


def test_internvl_is_recognised_by_family_or_checkpoint(verl_config: Any) -> None:
    assert is_internvl(verl_config([NATIVE]))
    assert is_internvl(verl_config(), "internvl") and not is_internvl(verl_config([NATIVE]), "qwen3_vl")
    assert not is_internvl(verl_config(["actor_rollout_ref.model.path=Qwen/Qwen3-VL-8B-Instruct"]))


def test_the_native_checkpoint_plans_and_ulysses_is_refused(verl_config: Any) -> None:
    check_internvl(verl_config([NATIVE]), "internvl")
    with pytest.raises(InternVLConfigError) as error:
        check_internvl(verl_config([NATIVE, "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "internvl")
    message = str(error.value)
    assert "Ulysses sequence parallelism is not wired for InternVL" in message
    assert "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2" in message  # the key to change, named
    # the same setting is fine for a Qwen model
    check_internvl(verl_config(["actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "qwen3_vl")


def test_the_remote_code_checkpoint_is_refused_with_the_native_id(verl_config: Any) -> None:
    with pytest.raises(InternVLConfigError, match="use the transformers-native OpenGVLab/InternVL3-8B-hf"):
        check_internvl(verl_config(["actor_rollout_ref.model.path=OpenGVLab/InternVL3-8B"]))


def test_training_is_refused_until_the_runtime_fixes_exist(verl_config: Any) -> None:
    with pytest.raises(InternVLConfigError) as error:
        refuse_training(verl_config([NATIVE]), "internvl")
    assert all(gap in str(error.value) for gap in RUNTIME_GAPS) and "backend=trl" in str(error.value)
    refuse_training(verl_config(), "qwen3_vl")


def test_patched_verl_loads_internvls_processor_and_keeps_its_image_token(tmp_path: Any) -> None:
    """The two runtime patches against the installed verl 0.9.1, on a saved tiny InternVL3 with its real processor:
    verl's own functions fail first (None; the placeholder-count error), then the patched ones give the training
    inputs with the same tiling as the rendered prompt."""
    import importlib
    from types import SimpleNamespace

    import torch
    from PIL import Image
    from transformers import InternVLProcessor
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    from vlm_capcurriculum.integrations.verl import internvl
    from vlm_capcurriculum.models import save_tiny

    path = str(save_tiny("internvl3", tmp_path / "tiny_internvl3"))
    tokenizer_module = importlib.import_module("verl.utils.tokenizer")
    model_config_module = importlib.import_module("verl.workers.config.model")
    original_hf_processor = tokenizer_module.hf_processor
    original_compute = AgentLoopWorker._compute_multi_modal_inputs
    try:
        with pytest.warns(UserWarning, match="Unsupported processor type"):
            assert original_hf_processor(path) is None  # the gap: verl 0.9.1 returns None for InternVLProcessor
        internvl.patch_hf_processor()
        internvl.patch_hf_processor()  # idempotent
        processor = model_config_module.hf_processor(path)  # what verl's HFModelConfig calls
        # the tiny model saves our InternVLProcessor subclass (vlm_capcurriculum.models.processors)
        assert isinstance(processor, InternVLProcessor) and processor.config.model_type == "internvl"
        assert tokenizer_module.hf_processor(path).image_token == "<IMG_CONTEXT>"

        image = Image.new("RGB", (900, 600), "white")  # wide: several tiles plus the thumbnail
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        rendered = processor(text=[text], images=[image], return_tensors="pt")  # the rollout's prompt, expanded
        assert rendered["pixel_values"].shape[0] > 1
        worker = object.__new__(AgentLoopWorker)
        worker.processor, worker.tokenizer = processor, processor.tokenizer
        output = SimpleNamespace(multi_modal_data={"images": [image]}, mm_processor_kwargs={})
        with pytest.raises(ValueError, match="image placeholders"):
            original_compute(worker, output, rendered["input_ids"])
        internvl.patch_prompt_decode()
        inputs = worker._compute_multi_modal_inputs(output, rendered["input_ids"])
        assert torch.equal(inputs["pixel_values"], rendered["pixel_values"])  # the same tiles as the prompt
        assert worker.tokenizer is processor.tokenizer  # restored
    finally:
        for name in internvl._HF_PROCESSOR_MODULES:
            module = importlib.import_module(name)
            if getattr(getattr(module, "hf_processor", None), "_capcurriculum_internvl", False):
                module.hf_processor = original_hf_processor
        AgentLoopWorker._compute_multi_modal_inputs = original_compute
