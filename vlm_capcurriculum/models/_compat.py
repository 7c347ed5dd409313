"""The transformers 4.x spellings the tiny builders need (EasyR1 pins ``transformers<5``; the package targets 5):
the slow image processors' names (5 renamed them ``...Pil``), the tokenizer (4.x's ``Qwen2Tokenizer`` is the slow
file-based class, so a ``Qwen2TokenizerFast`` over the same pipeline) and the RoPE arguments.
"""

from __future__ import annotations

from typing import Any

import transformers

TRANSFORMERS_4 = int(transformers.__version__.split(".")[0]) < 5

if TRANSFORMERS_4:
    from transformers import GotOcr2ImageProcessor as GotOcr2ImageProcessorPil
    from transformers import Qwen2VLImageProcessor as Qwen2VLImageProcessorPil
else:
    from transformers import GotOcr2ImageProcessorPil, Qwen2VLImageProcessorPil

__all__ = ["TRANSFORMERS_4", "GotOcr2ImageProcessorPil", "Qwen2VLImageProcessorPil", "qwen2_tokenizer", "rope_kwargs"]


def rope_kwargs(rope: dict[str, Any]) -> dict[str, Any]:
    """A text config's RoPE arguments from 5's ``rope_parameters`` dict (4.x: ``rope_theta`` + ``rope_scaling``)."""
    if not TRANSFORMERS_4:
        return {"rope_parameters": rope}
    scaling = {key: value for key, value in rope.items() if key != "rope_theta"}
    return {"rope_theta": rope["rope_theta"], "rope_scaling": scaling}


def qwen_pipeline(model: Any, pretokenize: str) -> Any:
    """A ``tokenizers`` pipeline as ``Qwen2Tokenizer`` builds it: NFC, Qwen's split regex, byte-level (no regex)."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

    backend = Tokenizer(model)
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(pretokenize), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return backend


def qwen2_tokenizer(vocab: dict[str, int], merges: list[tuple[str, str]], pretokenize: str, **kwargs: Any) -> Any:
    """A Qwen2 tokenizer over a BPE vocabulary: 5's ``Qwen2Tokenizer``; on 4.x a ``Qwen2TokenizerFast`` with the same
    model, NFC normaliser, split regex, byte-level pre-tokeniser and decoder."""
    if not TRANSFORMERS_4:
        from transformers import Qwen2Tokenizer

        return Qwen2Tokenizer(vocab=vocab, merges=merges, **kwargs)
    from tokenizers import decoders, models
    from transformers import Qwen2TokenizerFast

    bpe = models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False, byte_fallback=False)
    backend = qwen_pipeline(bpe, pretokenize)
    backend.decoder = decoders.ByteLevel()
    if kwargs.get("extra_special_tokens") is None:  # 4.x reads None as a dict
        kwargs.pop("extra_special_tokens", None)
    return Qwen2TokenizerFast(tokenizer_object=backend, **kwargs)
