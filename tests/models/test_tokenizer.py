from __future__ import annotations

import pytest

from vlm_capcurriculum.models import FAMILIES, build_tiny_processor
from vlm_capcurriculum.models.tokenizer import BPE_VOCAB_SIZE, curriculum_corpus, train_bpe

QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]
INTERNVL_SPECIAL = ["<img>", "</img>", "<IMG_CONTEXT>"]


def test_bpe_training_is_deterministic_and_sized() -> None:
    train_bpe.cache_clear()
    first = train_bpe()
    train_bpe.cache_clear()
    assert train_bpe() == first
    vocab, merges = first
    assert len(vocab) == BPE_VOCAB_SIZE
    assert len(merges) == BPE_VOCAB_SIZE - 256  # byte alphabet plus one token per merge


def test_corpus_is_reproducible() -> None:
    assert list(curriculum_corpus(50, seed=3)) == list(curriculum_corpus(50, seed=3))
    assert list(curriculum_corpus(50, seed=3)) != list(curriculum_corpus(50, seed=4))


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_are_single_special_ids(family: str) -> None:
    tokenizer = build_tiny_processor(family).tokenizer
    expected = QWEN_SPECIAL + (INTERNVL_SPECIAL if family.startswith("internvl") else [])
    added = {str(token): token for token in tokenizer.added_tokens_decoder.values()}
    for text in expected:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, (text, ids)
        assert added[text].special
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.bos_token is None
    # Added tokens follow the trained BPE vocabulary, <|endoftext|> first, as in the real tokenizers.
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == BPE_VOCAB_SIZE
    assert 1000 < len(tokenizer) < 2000


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trips_curriculum_text(family: str) -> None:
    tokenizer = build_tiny_processor(family).tokenizer
    text = "<think>\nArea = \\frac{3}{4} × 12² ≈ 108, so 日本 is B.\n</think> \\boxed{108}"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    # The trained merges compress curriculum-like text well below one token per byte.
    sample = "\n".join(curriculum_corpus(20))
    assert len(tokenizer(sample)["input_ids"]) < len(sample.encode()) / 2


@pytest.mark.parametrize(
    ("family", "think_is_one_token"),
    [("qwen2_5_vl", False), ("qwen3_vl", True), ("internvl3", False), ("internvl3_5", True)],
)
def test_think_markers_follow_the_family(family: str, think_is_one_token: bool) -> None:
    """Qwen3 tokenizers carry <think>/</think> as non-special added tokens; Qwen2.5's split them into BPE pieces.
    Either way they survive skip_special_tokens decoding, which the format reward relies on."""
    tokenizer = build_tiny_processor(family).tokenizer
    ids = tokenizer("<think>x</think>", add_special_tokens=False)["input_ids"]
    assert (len(ids) == 3) is think_is_one_token
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>x</think>"


def test_internvl_named_tokens() -> None:
    tokenizer = build_tiny_processor("internvl3").tokenizer
    assert tokenizer.start_image_token == "<img>"
    assert tokenizer.end_image_token == "</img>"
    assert tokenizer.context_image_token == "<IMG_CONTEXT>"
    assert tokenizer.context_image_token_id == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    assert tokenizer.video_token == "<video>"
