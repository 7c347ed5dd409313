"""A real tokenizer for verl's reward manager: a byte-level BPE built in code (no model hub needed).

Byte-level BPE decodes every string it encoded exactly, as Qwen's tokenizer does, so responses reach the reward
function unchanged after verl's ``tokenizer.decode``.
"""

from __future__ import annotations

import pytest

CORPUS = [
    "<think> Let me look at the image and count. </think> The answer is \\boxed{3}.",
    "\\frac{1}{2} \\sqrt{12} x^2 + 2x + 1 = 0 (1, 2) [0, 1) \\{1, 2\\} 90^\\circ 25\\%",
    "Option B: a blue umbrella. Yes, there is a dog. The car is red.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="session")
def byte_bpe_tokenizer_dir(tmp_path_factory) -> str:
    """Directory of a saved ``PreTrainedTokenizerFast`` (byte-level BPE, 512 tokens), loadable by verl's
    ``hf_tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    directory = tmp_path_factory.mktemp("byte_bpe_tokenizer")
    fast.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def byte_bpe_tokenizer(byte_bpe_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(byte_bpe_tokenizer_dir)
