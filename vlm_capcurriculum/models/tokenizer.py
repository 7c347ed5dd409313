"""A small byte-level BPE vocabulary trained in code, wrapped in the families' real tokenizer class.

Qwen2.5-VL, Qwen3-VL and the transformers-native InternVL3/3.5 checkpoints all ship a ``Qwen2Tokenizer``: byte-level
BPE behind Qwen's pre-tokenisation regex and NFC normalisation, with the chat and vision control tokens appended
after the BPE vocabulary. We train the BPE part on a generated corpus shaped like curriculum data (MCQs, arithmetic,
``<think>`` traces, ``\\boxed{}`` answers) so a tiny model sees realistic token streams, and keep everything else
(class, pre-tokeniser, added-token order and special flags) as in the real checkpoints. Nothing is downloaded.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from tokenizers import AddedToken, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

from ._compat import qwen2_tokenizer, qwen_pipeline

# The pre-tokenisation regex of Qwen2Tokenizer (transformers/models/qwen2/tokenization_qwen2.py). Training with the
# same split means the merges we learn are exactly the ones Qwen2Tokenizer can apply.
_QWEN_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

BPE_VOCAB_SIZE = 1024
"""Target size of the trained BPE part (256 byte symbols plus merges); added tokens come on top."""

# Added tokens in the order the real tokenizers append them after the BPE vocabulary
# (Qwen2.5-VL / Qwen3-VL tokenizer.json ``added_tokens``): (content, special).
QWEN_CONTROL_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
)
# Qwen3 adds tool-response and reasoning markers as plain (non-special) added tokens, so `<think>` survives
# `skip_special_tokens=True` decoding but is never split.
QWEN3_EXTRA_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
)
# InternVL appends its image markers after the LM's own tokens (transformers' convert_internvl_weights_to_hf.py);
# `<video>` is the video placeholder InternVLProcessor reads from `tokenizer.video_token`.
INTERNVL_EXTRA_TOKENS: tuple[tuple[str, bool], ...] = (
    ("<img>", True),
    ("</img>", True),
    ("<IMG_CONTEXT>", True),
    ("<quad>", True),
    ("</quad>", True),
    ("<ref>", True),
    ("</ref>", True),
    ("<box>", True),
    ("</box>", True),
    ("<video>", True),
)
# Named attributes InternVLProcessor reads from the tokenizer (`tokenizer.start_image_token` etc.).
INTERNVL_NAMED_TOKENS: Mapping[str, str] = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "video_token": "<video>",
}


@dataclass(frozen=True)
class TokenizerSpec:
    """What distinguishes one family's tokenizer: its added tokens (in order) and named multimodal tokens."""

    added_tokens: tuple[tuple[str, bool], ...]
    named_tokens: Mapping[str, str]
    chat_template: str


_WORD_TEXT = (
    "the a an of in on at to is are was what which how many much color shape size left right top bottom "
    "image picture photo shows contains visible object objects person people animal dog cat car tree house "
    "red blue green yellow black white orange purple brown gray circle square triangle rectangle line point "
    "angle side length area perimeter radius diameter volume sum difference product quotient total value "
    "number count answer question option options choose correct following best describes first then next "
    "so therefore because since let find solve compute check step final result equals equal greater less "
    "than more fewer near behind front between above below inside outside wearing holding sitting standing"
)
_WORDS = tuple(_WORD_TEXT.split())
_SYMBOLS = ("+", "-", "*", "/", "=", "<", ">", "^", "(", ")", "[", "]", "\\frac", "\\sqrt", "\\pi", "\\times")


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + rng.choice((".", "?", "!", ":"))


def curriculum_corpus(n: int = 3000, seed: int = 0) -> Iterator[str]:
    """Deterministic text shaped like the curriculum's prompts and completions (digits, math, MCQs, traces)."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        op = rng.choice(_SYMBOLS)
        kind = i % 4
        if kind == 0:
            letters = "ABCDEFGHIJ"[: rng.randint(2, 6)]
            options = "\n".join(f"{letter}. {_sentence(rng, rng.randint(1, 4))}" for letter in letters)
            yield f"{_sentence(rng, 8)}\nOptions:\n{options}\nAnswer with the option letter."
        elif kind == 1:
            yield (
                f"<think>\nLet x = {a} {op} {b}. {_sentence(rng, 10)} So x = {a + b}.\n</think>\n"
                f"The answer is \\boxed{{{a + b}}}."
            )
        elif kind == 2:
            yield f"<think>{_sentence(rng, 12)}</think> \\boxed{{{rng.choice('ABCDEFGHIJ')}}}"
        else:
            yield f"Compute \\frac{{{a}}}{{{b}}} + {a % 17}^{{2}} = {a / b + (a % 17) ** 2:.3f}. {_sentence(rng, 6)}"


@lru_cache(maxsize=1)
def train_bpe() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """Train byte-level BPE with Qwen's pre-tokeniser on :func:`curriculum_corpus`; returns (vocab, merges), the same
    in every process (deterministic training); cached because tests build many tokenizers."""
    backend = qwen_pipeline(models.BPE(), _QWEN_SPLIT)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    backend.train_from_iterator(curriculum_corpus(), trainer=trainer)
    model = json.loads(backend.to_str())["model"]
    merges = tuple(tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"])
    return dict(model["vocab"]), merges  # type: ignore[return-value]


def build_tokenizer(spec: TokenizerSpec) -> Qwen2Tokenizer:
    """A ``Qwen2Tokenizer`` over the trained BPE vocabulary with the family's added tokens and chat template; named
    tokens as in the instruct checkpoints (eos ``<|im_end|>``, pad ``<|endoftext|>``, no bos/unk)."""
    vocab, merges = train_bpe()
    first_id = len(vocab)
    added = {
        first_id + i: AddedToken(content, special=special, normalized=not special)
        for i, (content, special) in enumerate(spec.added_tokens)
    }
    return qwen2_tokenizer(
        dict(vocab),
        list(merges),
        _QWEN_SPLIT,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        added_tokens_decoder=added,
        extra_special_tokens=dict(spec.named_tokens) or None,
        chat_template=spec.chat_template,
        model_max_length=8192,
    )


def token_ids(tokenizer: Qwen2Tokenizer, tokens: Sequence[str]) -> list[int]:
    """Ids of tokens that must exist as single added tokens (raises instead of silently mapping to nothing)."""
    vocab = tokenizer.get_vocab()
    missing = [t for t in tokens if t not in vocab]
    if missing:
        raise KeyError(f"tokenizer lacks the added tokens {missing}")
    return [vocab[t] for t in tokens]
