"""The tiny processors render conversations exactly as the real families' templates do."""

from __future__ import annotations

import pytest

from vlm_capcurriculum.models import build_tiny_processor

DIALOGUE = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is 2+2?"}]},
    {"role": "assistant", "content": [{"type": "text", "text": "<think>add</think> \\boxed{4}"}]},
    {"role": "user", "content": "And 3+3?"},
]
QWEN_VISION = "<|vision_start|><|image_pad|><|vision_end|>"

EXPECTED = {
    # Qwen2.5-VL inserts its default system turn.
    "qwen2_5_vl": (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{QWEN_VISION}What is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>add</think> \\boxed{4}<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # Qwen3-VL has no default system turn.
    "qwen3_vl": (
        f"<|im_start|>user\n{QWEN_VISION}What is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>add</think> \\boxed{4}<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
    # InternVL-hf: the image item becomes <IMG_CONTEXT> and a newline; the processor expands it.
    "internvl3": (
        "<|im_start|>user\n<IMG_CONTEXT>\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<think>add</think> \\boxed{4}<|im_end|>\n"
        "<|im_start|>user\nAnd 3+3?<|im_end|>\n"
        "<|im_start|>assistant\n"
    ),
}
EXPECTED["internvl3_5"] = EXPECTED["internvl3"]


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_renders_image_dialogue(family: str) -> None:
    processor = build_tiny_processor(family)
    assert processor.apply_chat_template(DIALOGUE, add_generation_prompt=True) == EXPECTED[family]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_qwen_system_turn_and_vision_ids(family: str) -> None:
    processor = build_tiny_processor(family)
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Think first."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Same?"}]},
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=False, add_vision_id=True)
    assert text == (
        "<|im_start|>system\nThink first.<|im_end|>\n"
        f"<|im_start|>user\nPicture 1: {QWEN_VISION}Picture 2: {QWEN_VISION}Same?<|im_end|>\n"
    )


def test_qwen3_rejects_a_late_system_turn() -> None:
    processor = build_tiny_processor("qwen3_vl")
    messages = [{"role": "user", "content": "hi"}, {"role": "system", "content": "late"}]
    with pytest.raises(Exception, match="first position"):
        processor.apply_chat_template(messages)
