from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoProcessor

from vlm_capcurriculum.models import FAMILIES, build_tiny, build_tiny_processor, load_tiny, save_tiny

MODEL_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
    "qwen3_vl": "Qwen3VLForConditionalGeneration",
    "internvl3": "InternVLForConditionalGeneration",
    "internvl3_5": "InternVLForConditionalGeneration",
}
PROCESSOR_CLASSES = {
    "qwen2_5_vl": "Qwen2_5_VLImageOnlyProcessor",
    "qwen3_vl": "Qwen3VLImageOnlyProcessor",
    "internvl3": "InternVLImageOnlyProcessor",
    "internvl3_5": "InternVLImageOnlyProcessor",
}
# Image tokens for the 90 x 70 fixture image: Qwen2.5-VL resizes to 84 x 56 (6 x 4 patches of 14, merged 2 x 2);
# Qwen3-VL to 96 x 64 (6 x 4 patches of 16, merged 2 x 2); InternVL tiles it 2 x 2 plus a thumbnail, 4 tokens each.
IMAGE_TOKENS = {"qwen2_5_vl": 6, "qwen3_vl": 6, "internvl3": 20, "internvl3_5": 20}


def encode(processor, conversation: list[dict], images: list[Image.Image]) -> dict:
    texts = [processor.apply_chat_template(conversation, add_generation_prompt=True)] * len(images)
    return processor(text=texts, images=images, return_tensors="pt", padding=True, padding_side="left")


def log_probs(model, inputs: dict) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(**inputs).logits, dim=-1)


@pytest.mark.parametrize("family", FAMILIES)
def test_builds_the_real_architecture_tiny(family: str) -> None:
    model, processor = build_tiny(family)
    assert type(model).__name__ == MODEL_CLASSES[family]
    assert type(processor).__name__ == PROCESSOR_CLASSES[family]
    assert not hasattr(processor, "video_processor")
    assert 100_000 < model.num_parameters() < 2_000_000
    assert model.config.get_text_config().vocab_size >= len(processor.tokenizer)
    assert model.config.image_token_id == processor.image_token_id
    assert not model.training


def test_language_models_match_the_families() -> None:
    config = {family: build_tiny(family)[0].config for family in FAMILIES}
    assert config["internvl3"].text_config.model_type == "qwen2"  # InternVL3: Qwen2.5 LM
    assert config["internvl3_5"].text_config.model_type == "qwen3"  # InternVL3.5: Qwen3 LM (QK norm)
    assert config["qwen3_vl"].text_config.rope_parameters["mrope_interleaved"] is True
    assert config["qwen2_5_vl"].vision_config.fullatt_block_indexes == [1]


@pytest.mark.parametrize("family", FAMILIES)
def test_processor_expands_image_tokens(family: str, conversation: list[dict], image: Image.Image) -> None:
    processor = build_tiny_processor(family)
    inputs = encode(processor, conversation, [image])
    ids = inputs["input_ids"][0]
    n_image_tokens = int((ids == processor.image_token_id).sum())
    assert n_image_tokens == IMAGE_TOKENS[family]
    pixel_values = inputs["pixel_values"]
    if family.startswith("qwen"):
        (grid,) = inputs["image_grid_thw"]
        merge = processor.image_processor.merge_size
        assert n_image_tokens == int(grid.prod()) // merge**2
        assert pixel_values.shape[0] == int(grid.prod())  # one row per patch
        start = processor.tokenizer.convert_tokens_to_ids("<|vision_start|>")
        first = int((ids == processor.image_token_id).nonzero()[0])
        assert int(ids[first - 1]) == start
    else:
        tiles = pixel_values.shape[0]
        assert pixel_values.shape[1:] == (3, 56, 56)
        assert n_image_tokens == tiles * processor.image_seq_length
        assert int((ids == processor.start_image_token_id).sum()) == 1
        assert int((ids == processor.end_image_token_id).sum()) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_of_images_with_different_sizes(family: str, conversation: list[dict]) -> None:
    processor = build_tiny_processor(family)
    small, large = Image.new("RGB", (40, 40), (0, 0, 255)), Image.new("RGB", (300, 120), (0, 255, 0))
    inputs = encode(processor, conversation, [small, large])
    counts = (inputs["input_ids"] == processor.image_token_id).sum(dim=1).tolist()
    assert counts[0] < counts[1]  # the larger image gets more tokens, within the tiny caps
    assert max(counts) <= 20
    assert inputs["attention_mask"][0, 0] == 0  # left padding for generation


@pytest.mark.parametrize("family", FAMILIES)
def test_mixed_batch_of_image_and_text_only_prompts(family: str, conversation: list[dict], image: Image.Image) -> None:
    """TRL passes `None` for a prompt without images; the merged baseline mixes such prompts with image ones."""
    model, processor = build_tiny(family)
    with_image = processor.apply_chat_template(conversation, add_generation_prompt=True)
    text_only = processor.apply_chat_template([{"role": "user", "content": "1+1?"}], add_generation_prompt=True)
    for images in ([[image], None], [[image], []], [image, None]):
        inputs = processor(
            text=[with_image, text_only], images=images, return_tensors="pt", padding=True, padding_side="left"
        )
        counts = (inputs["input_ids"] == processor.image_token_id).sum(dim=1).tolist()
        assert counts == [IMAGE_TOKENS[family], 0]
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()
    text_batch = processor(text=[text_only, text_only], images=[None, None], return_tensors="pt")
    assert "pixel_values" not in text_batch
    with pytest.raises(ValueError):  # a placeholder without an image is still an error
        processor(text=[with_image, text_only], images=[None, None], return_tensors="pt")


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_backward_and_generate_with_images(family: str, conversation: list[dict], image: Image.Image) -> None:
    model, processor = build_tiny(family)
    inputs = encode(processor, conversation, [image])
    model.train()
    output = model(**inputs, labels=inputs["input_ids"])
    assert torch.isfinite(output.loss)
    output.loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    prompt_length = inputs["input_ids"].shape[1]
    generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape == (1, prompt_length + 5) or processor.tokenizer.eos_token_id in generated[0]
    assert generated.shape[1] > prompt_length


@pytest.mark.parametrize("family", FAMILIES)
def test_seed_determines_weights(family: str) -> None:
    first, _ = build_tiny(family, seed=1)
    again, _ = build_tiny(family, seed=1)
    other, _ = build_tiny(family, seed=2)
    state, same, different = first.state_dict(), again.state_dict(), other.state_dict()
    assert all(torch.equal(state[k], same[k]) for k in state)
    assert not all(torch.equal(state[k], different[k]) for k in state)


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_reload_gives_identical_log_probs(
    family: str, tmp_path: Path, conversation: list[dict], image: Image.Image
) -> None:
    model, processor = build_tiny(family, seed=3)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    reloaded, reloaded_processor = load_tiny(tmp_path)
    assert type(reloaded_processor) is type(processor)
    assert reloaded_processor.chat_template == processor.chat_template
    inputs = encode(processor, conversation, [image])
    reloaded_inputs = encode(reloaded_processor, conversation, [image])
    assert inputs.keys() == reloaded_inputs.keys()
    for key in inputs:
        assert torch.equal(inputs[key], reloaded_inputs[key]), key
    assert torch.equal(log_probs(model, inputs), log_probs(reloaded, reloaded_inputs))
    assert reloaded.generation_config.eos_token_id == model.generation_config.eos_token_id


def test_auto_processor_reload_in_a_fresh_interpreter(tmp_path: Path) -> None:
    """A new process needs nothing but `import vlm_capcurriculum.models` (registration) to reload a checkpoint: no
    trust_remote_code, no network. Without the import, the saved auto_map makes AutoProcessor ask for
    trust_remote_code instead of silently falling back to the bare tokenizer (test_processor_auto_map.py)."""
    save_tiny("qwen3_vl", tmp_path)
    script = textwrap.dedent(
        f"""
        from transformers import AutoProcessor
        try:
            print("RESULT", type(AutoProcessor.from_pretrained({str(tmp_path)!r})).__name__)
        except ValueError as err:  # transformers prompts on stdout first, then refuses on a closed stdin
            print("RESULT", "refused" if "trust_remote_code" in str(err) else err)
        import vlm_capcurriculum.models
        print("RESULT", type(AutoProcessor.from_pretrained({str(tmp_path)!r})).__name__)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"RESULT (\S+)", result.stdout) == ["refused", "Qwen3VLImageOnlyProcessor"]


def test_offline_mode_is_on() -> None:
    with pytest.raises(OSError):
        AutoConfig.from_pretrained("Qwen/Qwen2.5-VL-7B-Instruct")
    with pytest.raises(OSError):
        AutoProcessor.from_pretrained("Qwen/Qwen3-VL-8B-Instruct")


def test_unknown_family() -> None:
    with pytest.raises(ValueError, match="qwen2_5_vl"):
        build_tiny("llava")
