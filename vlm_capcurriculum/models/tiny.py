"""Tiny, randomly initialised but architecturally real VLMs with working processors, built offline.

Every test of the training stack and the CPU quick start runs on these. Each family keeps the real checkpoint's
model class, sub-module layout, architectural switches, tokenizer class, chat format, image processor and processor;
only the sizes shrink (LM hidden 64 x 2 layers, vision depth 2, a ~1k BPE vocabulary, at most 16 visual tokens per
image), so a forward and backward pass on one image prompt takes milliseconds. The checkpoints they follow (values
from their ``config.json``):

* ``qwen2_5_vl``: Qwen/Qwen2.5-VL-7B-Instruct (text 3584 x 28 layers, 28 heads / 4 KV, M-RoPE [16, 24, 24] of a
  128 head dim, theta 1e6; ViT 1280 x 32, patch 14, merge 2, window 112 with full attention at blocks 7/15/23/31).
* ``qwen3_vl``: Qwen/Qwen3-VL-8B-Instruct (text 4096 x 36, 32 heads / 8 KV, head dim 128, interleaved M-RoPE
  [24, 20, 20], theta 5e6; ViT 1152 x 27, patch 16, 2304 learned positions, deepstack at blocks 8/16/24).
* ``internvl3``: OpenGVLab/InternVL3-8B-hf (InternViT-300M: 1024 x 24, patch 14 on 448 tiles, biased QKV, no QK norm,
  LayerNorm, layer scale 0.1; pixel-shuffle 0.5 -> 256 tokens per tile; Qwen2.5-7B LM).
* ``internvl3_5``: OpenGVLab/InternVL3_5-8B-HF (same InternViT-300M and projector; Qwen3-8B LM with QK norm).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForImageTextToText,
    AutoProcessor,
    GenerationConfig,
    InternVLConfig,
    InternVLForConditionalGeneration,
    PretrainedConfig,
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
)

from vlm_capcurriculum.schema import SampleRecord

from ._compat import GotOcr2ImageProcessorPil, Qwen2VLImageProcessorPil, rope_kwargs
from .processors import (
    InternVLImageOnlyProcessor,
    Qwen2_5_VLImageOnlyProcessor,
    Qwen3VLImageOnlyProcessor,
    save_processor,
)
from .tokenizer import (
    INTERNVL_EXTRA_TOKENS,
    INTERNVL_NAMED_TOKENS,
    QWEN3_EXTRA_TOKENS,
    QWEN_CONTROL_TOKENS,
    TokenizerSpec,
    build_tokenizer,
    token_ids,
)

FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl", "internvl3", "internvl3_5")

# Shared LM sizes. 4 query heads over 2 KV heads keeps grouped-query attention; head dim 16.
TEXT_HIDDEN = 64
TEXT_LAYERS = 2
TEXT_HEADS = 4
TEXT_KV_HEADS = 2
TEXT_INTERMEDIATE = 128
VISION_HIDDEN = 32
VISION_DEPTH = 2
VISION_HEADS = 2
VISION_INTERMEDIATE = 64
# Qwen pads its embedding matrix beyond the tokenizer (152064 rows for 151665 tokens); we pad to a multiple of this.
VOCAB_MULTIPLE = 64

# InternVL tiles: 56 px with 14 px patches -> 4 x 4 patches, pixel shuffle 0.5 -> 4 image tokens per tile.
INTERNVL_TILE = 56
INTERNVL_PATCH = 14
INTERNVL_MAX_TILES = 4
INTERNVL_TOKENS_PER_TILE = (INTERNVL_TILE // INTERNVL_PATCH) ** 2 // 4


def _chat_template(name: str) -> str:
    return resources.files(__package__).joinpath("chat_templates", f"{name}.jinja").read_text(encoding="utf-8")


def _text_kwargs(tokenizer: Any) -> dict[str, Any]:
    """LM settings shared by the four families; token ids come from the trained tokenizer."""
    pad_id, eos_id = token_ids(tokenizer, ["<|endoftext|>", "<|im_end|>"])
    return {
        "vocab_size": math.ceil(len(tokenizer) / VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": TEXT_INTERMEDIATE,
        "num_hidden_layers": TEXT_LAYERS,
        "num_attention_heads": TEXT_HEADS,
        "num_key_value_heads": TEXT_KV_HEADS,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "bos_token_id": pad_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }


#: The vision sizes both Qwen-VL generations share (their ViTs differ in activation, patch and positions).
_QWEN_VISION = {
    "depth": VISION_DEPTH,
    "hidden_size": VISION_HIDDEN,
    "intermediate_size": VISION_INTERMEDIATE,
    "num_heads": VISION_HEADS,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": TEXT_HIDDEN,
}


def _qwen_config(cls: type[PretrainedConfig], tokenizer: Any, text: dict[str, Any], vision: dict[str, Any]) -> Any:
    """A Qwen-VL config (both generations share the vision token ids and the untied LM head)."""
    image_id, video_id, start_id, end_id = token_ids(
        tokenizer, ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]
    )
    return cls(
        text_config=text,
        vision_config=vision,
        image_token_id=image_id,
        video_token_id=video_id,
        vision_start_token_id=start_id,
        vision_end_token_id=end_id,
        tie_word_embeddings=False,
    )


def _qwen2_5_vl_config(tokenizer: Any) -> PretrainedConfig:
    text = _text_kwargs(tokenizer) | {
        "hidden_act": "silu",
        # M-RoPE (temporal, height, width) sections over head_dim / 2 = 8, in the 7B's 16:24:24 proportion.
        **rope_kwargs({"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]}),
    }
    vision = _QWEN_VISION | {
        "hidden_act": "silu",
        "patch_size": 14,
        # Window of 56 px = 2 x 2 merged tokens; block 0 attends within windows, block 1 (like 7/15/23/31) globally.
        "window_size": 56,
        "fullatt_block_indexes": [1],
        "tokens_per_second": 2,
    }
    return _qwen_config(Qwen2_5_VLConfig, tokenizer, text, vision)


def _qwen3_vl_config(tokenizer: Any) -> PretrainedConfig:
    text = _text_kwargs(tokenizer) | {
        "head_dim": TEXT_HIDDEN // TEXT_HEADS,
        "hidden_act": "silu",
        "attention_bias": False,
        # Interleaved M-RoPE over head_dim / 2 = 8, in the 8B's 24:20:20 proportion.
        **rope_kwargs(
            {"rope_type": "default", "rope_theta": 5_000_000.0, "mrope_section": [4, 2, 2], "mrope_interleaved": True}
        ),
    }
    vision = _QWEN_VISION | {
        "hidden_act": "gelu_pytorch_tanh",
        "patch_size": 16,
        "num_position_embeddings": 64,  # an 8 x 8 learned grid, bilinearly interpolated like the real 48 x 48
        "deepstack_visual_indexes": [0],  # block 0's features are injected into LM layer 0, as 8/16/24 -> 0/1/2
    }
    return _qwen_config(Qwen3VLConfig, tokenizer, text, vision)


def _internvl_config(tokenizer: Any, lm_type: str) -> PretrainedConfig:
    (image_id,) = token_ids(tokenizer, ["<IMG_CONTEXT>"])
    text = _text_kwargs(tokenizer) | {"model_type": lm_type, "hidden_act": "silu", "rope_theta": 1_000_000.0}
    if lm_type == "qwen3":
        text["head_dim"] = TEXT_HIDDEN // TEXT_HEADS
    vision = {
        "hidden_size": VISION_HIDDEN,
        "num_hidden_layers": VISION_DEPTH,
        "num_attention_heads": VISION_HEADS,
        "intermediate_size": VISION_INTERMEDIATE,
        "hidden_act": "gelu",
        "attention_bias": True,
        "use_qk_norm": False,
        "norm_type": "layer_norm",
        "layer_norm_eps": 1e-6,
        "layer_scale_init_value": 0.1,
        "image_size": [INTERNVL_TILE, INTERNVL_TILE],
        "patch_size": [INTERNVL_PATCH, INTERNVL_PATCH],
        "use_absolute_position_embeddings": True,
        "use_mean_pooling": True,
    }
    return InternVLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=image_id,
        image_seq_length=INTERNVL_TOKENS_PER_TILE,
        downsample_ratio=0.5,
        projector_hidden_act="gelu",
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
    )


def _qwen_image_processor(patch: int, **normalisation: Any) -> Qwen2VLImageProcessorPil:
    """Images of 4 x 4 .. 8 x 8 patches, merged 2 x 2 -> 4 to 16 image tokens (real Qwen2.5-VL: 3136 .. 12845056 px);
    ``size`` is passed whole: Qwen2VLImageProcessorPil mutates its class-level default when given min/max_pixels."""
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": (4 * patch) ** 2, "longest_edge": (8 * patch) ** 2},
        patch_size=patch,
        temporal_patch_size=2,
        merge_size=2,
        **normalisation,
    )


def _internvl_image_processor() -> GotOcr2ImageProcessorPil:
    # The InternVL-hf checkpoints use GotOcr2's dynamic tiling (448 px tiles, up to 12 plus a thumbnail) with
    # ImageNet statistics; tiny: 56 px tiles, up to 4. InternVLProcessor turns on crop_to_patches itself.
    return GotOcr2ImageProcessorPil(
        size={"height": INTERNVL_TILE, "width": INTERNVL_TILE},
        crop_to_patches=True,
        min_patches=1,
        max_patches=INTERNVL_MAX_TILES,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )


@dataclass(frozen=True)
class FamilySpec:
    """How to build one family: tokenizer, config, image processor, processor and model classes."""

    tokenizer: TokenizerSpec
    config: Callable[[Any], PretrainedConfig]
    image_processor: Callable[[], Any]
    processor_class: type[ProcessorMixin]
    model_class: type[PreTrainedModel]
    processor_kwargs: dict[str, Any]


def _spec(family: str) -> FamilySpec:
    internvl_template = _chat_template("internvl")
    specs = {
        "qwen2_5_vl": FamilySpec(
            TokenizerSpec(QWEN_CONTROL_TOKENS, {}, _chat_template("qwen2_5_vl")),
            _qwen2_5_vl_config,
            lambda: _qwen_image_processor(14),  # 56 x 56 .. 112 x 112 px
            Qwen2_5_VLImageOnlyProcessor,
            Qwen2_5_VLForConditionalGeneration,
            {},
        ),
        "qwen3_vl": FamilySpec(
            TokenizerSpec(QWEN_CONTROL_TOKENS + QWEN3_EXTRA_TOKENS, {}, _chat_template("qwen3_vl")),
            _qwen3_vl_config,
            # the Qwen2-VL image processor with patch 16 and mean/std 0.5: 64 x 64 .. 128 x 128 px
            lambda: _qwen_image_processor(16, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]),
            Qwen3VLImageOnlyProcessor,
            Qwen3VLForConditionalGeneration,
            {},
        ),
        "internvl3": FamilySpec(
            TokenizerSpec(QWEN_CONTROL_TOKENS + INTERNVL_EXTRA_TOKENS, INTERNVL_NAMED_TOKENS, internvl_template),
            lambda tok: _internvl_config(tok, "qwen2"),
            _internvl_image_processor,
            InternVLImageOnlyProcessor,
            InternVLForConditionalGeneration,
            {"image_seq_length": INTERNVL_TOKENS_PER_TILE},
        ),
        "internvl3_5": FamilySpec(
            TokenizerSpec(
                QWEN_CONTROL_TOKENS + QWEN3_EXTRA_TOKENS + INTERNVL_EXTRA_TOKENS,
                INTERNVL_NAMED_TOKENS,
                internvl_template,
            ),
            lambda tok: _internvl_config(tok, "qwen3"),
            _internvl_image_processor,
            InternVLImageOnlyProcessor,
            InternVLForConditionalGeneration,
            {"image_seq_length": INTERNVL_TOKENS_PER_TILE},
        ),
    }
    if family not in specs:
        raise ValueError(f"unknown tiny model family {family!r}; expected one of {', '.join(FAMILIES)}")
    return specs[family]


def build_tiny_processor(family: str) -> ProcessorMixin:
    """The family's processor (trained tokenizer, chat template, small image processor), without a video processor."""
    spec = _spec(family)
    tokenizer = build_tokenizer(spec.tokenizer)
    return spec.processor_class(
        image_processor=spec.image_processor(),
        tokenizer=tokenizer,
        chat_template=spec.tokenizer.chat_template,
        **spec.processor_kwargs,
    )


def build_tiny(family: str, *, seed: int = 0) -> tuple[PreTrainedModel, ProcessorMixin]:
    """A randomly initialised tiny model of ``family`` (float32, CPU, eval mode; same ``seed``, same weights, the
    global RNG untouched) and its processor; generation stops at ``<|im_end|>`` or ``<|endoftext|>`` as in the
    instruct checkpoints."""
    spec = _spec(family)
    processor = build_tiny_processor(family)
    config = spec.config(processor.tokenizer)
    # a hub checkpoint's config names its class; framework code reads it (e.g. verl's HF export)
    config.architectures = [spec.model_class.__name__]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = spec.model_class(config)
    text = config.get_text_config()
    model.generation_config = GenerationConfig(
        bos_token_id=text.bos_token_id,
        eos_token_id=[text.eos_token_id, text.pad_token_id],
        pad_token_id=text.pad_token_id,
    )
    model.eval()
    return model, processor


def save_tiny(family: str, path: str | Path, *, seed: int = 0) -> Path:
    """Build a tiny model and save model and processor to ``path`` (loadable with :func:`load_tiny`)."""
    path = Path(path)
    model, processor = build_tiny(family, seed=seed)
    model.save_pretrained(path)
    save_processor(processor, path)
    return path


def load_tiny(path: str | Path) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Reload a saved tiny (or any supported) model with the Auto classes, offline and without remote code."""
    model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    model.eval()
    return model, processor


# -- tiny://<family> as a recipe's model ----------------------------------------------------------------------------


class TinyModelError(ValueError):
    """A ``tiny://`` path that names no family, or an output directory holding a differently built tiny model."""


TINY_SCHEME = "tiny://"
BASE_MODEL_DIR = "base_model"
_READY = "vlmcc_tiny.json"


def tiny_family(path: str) -> str | None:
    """The family of a ``tiny://<family>`` path, None for any other path; raises for an unknown family."""
    if not path.startswith(TINY_SCHEME):
        return None
    family = path[len(TINY_SCHEME) :].strip("/")
    if family not in FAMILIES:
        raise TinyModelError(
            f"model.path {path!r}: unknown tiny family {family!r}; expected one of {', '.join(FAMILIES)}"
        )
    return family


def format_warm_start(
    model: torch.nn.Module,
    processor: object,
    records: Sequence[SampleRecord],
    image_paths: Callable[[int], Sequence[Path]],
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    template: str | None = None,
) -> list[float]:
    """Supervised steps on ``prompt -> <think> </think> \\boxed{answer}<eos>`` (loss on the answer only); returns
    the losses. Runs under its own RNG so the caller's random state is untouched. Needs only transformers (the
    prompt is the processor's chat template, as TRL renders it), so the EasyR1 lane warm-starts with it too."""
    from PIL import Image

    from vlm_capcurriculum.prompts import prompt_blocks, render_prompt

    tokenizer = processor.tokenizer  # type: ignore[attr-defined]
    end = tokenizer.eos_token or ""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    model.train()
    with torch.random.fork_rng(devices=[]):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            picks = torch.randint(len(records), (batch_size,), generator=generator).tolist()
            images = [[Image.open(path).convert("RGB") for path in image_paths(i)] or None for i in picks]
            prompts = [
                processor.apply_chat_template(  # type: ignore[attr-defined]
                    [{"role": "user", "content": prompt_blocks(render_prompt(records[i].problem, template))}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for i in picks
            ]
            targets = [f"<think> </think> \\boxed{{{records[i].answer}}}{end}" for i in picks]
            kwargs = {"images": images if any(images) else None, "padding": True, "return_tensors": "pt"}
            full = processor(
                text=[p + t for p, t in zip(prompts, targets, strict=True)], padding_side="right", **kwargs
            )
            prompt_only = processor(text=prompts, padding_side="right", **kwargs)
            labels = full["input_ids"].clone()
            labels[full["attention_mask"] == 0] = -100
            for row, length in enumerate(prompt_only["attention_mask"].sum(dim=1).tolist()):
                labels[row, :length] = -100
            loss = model(**full, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.eval()
    return losses


def prepare_tiny_model(
    family: str,
    output_dir: str | Path,
    *,
    seed: int = 0,
    warm_start_steps: int = 0,
    records: Sequence[SampleRecord],
    image_paths: Callable[[int], Sequence[Path]],
    template: str | None = None,
) -> Path:
    """Build (or reuse) ``<output_dir>/base_model`` for ``model.path: tiny://<family>``, the directory the KL reference
    is rebuilt from. A random model never writes the answer format (every reward and advantage 0), so
    ``warm_start_steps`` first teach it on the records' boxed gold answers (a real checkpoint's instruction tuning)."""
    path = Path(output_dir) / BASE_MODEL_DIR
    recipe = {"family": family, "seed": seed, "warm_start_steps": warm_start_steps, "records": len(records)}
    ready = path / _READY
    if ready.is_file():
        if json.loads(ready.read_text()) != recipe:
            raise TinyModelError(
                f"{path} holds a tiny model built differently ({ready.read_text().strip()}; asked: {recipe}): "
                "use a fresh output directory"
            )
        return path
    print(f"tiny model: building a random {family} model (seed {seed}) in {path}", flush=True)
    save_tiny(family, path, seed=seed)
    if warm_start_steps > 0:
        model, processor = load_tiny(path)
        losses = format_warm_start(
            model, processor, records, image_paths, steps=warm_start_steps, seed=seed, template=template
        )
        print(
            f"tiny model: {family}: format warm-start ({warm_start_steps} supervised steps on the boxed gold "
            f"answers, model.tiny_warm_start_steps): loss {losses[0]:.3f} -> {losses[-1]:.3f}",
            flush=True,
        )
        model.save_pretrained(path)
    ready.write_text(json.dumps(recipe) + "\n")
    return path
