"""InternVL3 / InternVL3.5 on verl 0.9.1 (the transformers-native ``-hf`` checkpoints): the plan-time refusals
(:func:`check_internvl`), ``data.mm_processor_kwargs``' pixel bound as InternVL's tile cap (:func:`processor_kwargs`),
and the runtime fixes of what verl gets wrong for it, applied by ``plugin.AFTER_IMPORT`` in every verl process
(``docs/integrations/verl.md``, "InternVL3 / InternVL3.5").
"""

from __future__ import annotations

import json
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlm_capcurriculum.config import ConfigError

FAMILY = "internvl"

#: Remote-code InternVL checkpoints and their transformers-native counterparts.
NATIVE_CHECKPOINTS: dict[str, str] = {
    "OpenGVLab/InternVL3-8B": "OpenGVLab/InternVL3-8B-hf",
    "OpenGVLab/InternVL3_5-8B": "OpenGVLab/InternVL3_5-8B-HF",
}


def is_internvl(config: DictConfig, family: str | None = None) -> bool:
    """The recipe's ``model.family``, or (for a plain verl config) the checkpoint's name."""
    if family is not None:
        return family == FAMILY
    path = str(OmegaConf.select(config, "actor_rollout_ref.model.path", default="") or "")
    return "internvl" in path.lower()


def _sequence_parallel_sizes(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node:
            child = f"{path}.{key}"
            if key == "ulysses_sequence_parallel_size":
                yield child, OmegaConf.select(node, str(key), default=1)
            else:
                yield from _sequence_parallel_sizes(node.get(key), child)


def check_internvl(config: DictConfig, family: str | None = None) -> None:
    """Plan-time checks for an InternVL run (nothing for other models); raises :class:`ConfigError`."""
    if not is_internvl(config, family):
        return
    problems = []
    parallel = [
        f"{key}={size}"
        for key, size in _sequence_parallel_sizes(config.actor_rollout_ref, "actor_rollout_ref")
        if isinstance(size, int) and size > 1
    ]
    if parallel:
        problems.append(
            f"Ulysses sequence parallelism is not wired for InternVL (verl's monkey_patch.py covers other "
            f"vision-language model types): set {', '.join(parallel)} to 1"
        )
    path = str(OmegaConf.select(config, "actor_rollout_ref.model.path", default="") or "").rstrip("/")
    if path in NATIVE_CHECKPOINTS:
        problems.append(
            f"actor_rollout_ref.model.path={path} is the remote-code checkpoint (InternVLChatModel); use the "
            f"transformers-native {NATIVE_CHECKPOINTS[path]}"
        )
    if problems:
        raise ConfigError("InternVL on verl: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------------ pixel cap
@dataclass(frozen=True)
class Tiling:
    """How an InternVL processor cuts an image: square tiles of ``tile`` px, at most ``max_patches`` of them (plus a
    thumbnail tile whenever it uses more than one)."""

    tile: int
    max_patches: int


#: The public InternVL3/3.5 -hf checkpoints' tiling (their preprocessor_config.json: GotOcr2 image processor, 448 px
#: tiles, max_patches 12), used where the checkpoint is not on disk when the run is planned.
PUBLIC_TILING = Tiling(tile=448, max_patches=12)


def tiling_of(model_path: str) -> Tiling:
    """The tiling of the checkpoint at ``model_path``: its image processor's settings when it is a local folder
    (``preprocessor_config.json``, or ``processor_config.json``'s ``image_processor`` as transformers 5 saves it),
    the tiny family's for ``tiny://internvl*``, else :data:`PUBLIC_TILING`."""
    if model_path.startswith("tiny://"):
        from vlm_capcurriculum.models.tiny import INTERNVL_MAX_TILES, INTERNVL_TILE

        return Tiling(tile=INTERNVL_TILE, max_patches=INTERNVL_MAX_TILES)
    folder = Path(model_path).expanduser()
    values: dict[str, Any] = {}
    if (folder / "preprocessor_config.json").is_file():
        values = json.loads((folder / "preprocessor_config.json").read_text())
    elif (folder / "processor_config.json").is_file():
        values = json.loads((folder / "processor_config.json").read_text()).get("image_processor") or {}
    if not values:
        return PUBLIC_TILING
    size = values.get("size") or {}
    tile = int(size.get("height", PUBLIC_TILING.tile)) if isinstance(size, dict) else int(size)
    return Tiling(tile=tile, max_patches=int(values.get("max_patches", PUBLIC_TILING.max_patches)))


def max_patches_for(max_pixels: int, tiling: Tiling) -> int | None:
    """The most tiles whose pixels, thumbnail included, stay within ``max_pixels`` (None: the processor's own cap is
    already lower). Qwen's ``max_pixels`` bounds the pixels its tower sees by resizing; InternVL's tower sees whole
    tiles, so the same bound is a tile count: 500000 px over 448 px tiles (200704 px) fits 2 tiles, and since more
    than one crop brings a thumbnail, that is 1 crop."""
    budget = int(max_pixels) // (tiling.tile * tiling.tile)
    if budget < 1:
        raise ConfigError(
            f"data.mm_processor_kwargs.max_pixels={max_pixels} is below one InternVL tile ({tiling.tile} x "
            f"{tiling.tile} = {tiling.tile * tiling.tile} px): InternVL cannot show an image in fewer pixels"
        )
    crops = 1 if budget < 3 else budget - 1
    return crops if crops < tiling.max_patches else None


def processor_kwargs(mm_kwargs: Mapping[str, Any], tiling: Tiling) -> dict[str, Any]:
    """``data.mm_processor_kwargs`` for InternVL's processor: ``max_pixels`` becomes ``max_patches`` (see
    :func:`max_patches_for`); ``min_pixels`` has no counterpart (every tile is full size) and is dropped; other keys
    are kept."""
    kwargs = {key: value for key, value in mm_kwargs.items() if key not in ("min_pixels", "max_pixels")}
    if mm_kwargs.get("max_pixels") is not None:
        cap = max_patches_for(int(mm_kwargs["max_pixels"]), tiling)
        if cap is not None:
            kwargs["max_patches"] = min(cap, int(kwargs.get("max_patches", cap)))
    return kwargs


def rollout_image_inputs(processor: Any, images: list[Any], mm_kwargs: Mapping[str, Any]) -> tuple[dict, int]:
    """What ``InternVLProcessor`` computes for ``images`` (tiled with its own defaults and ``mm_kwargs``), for a
    rollout that receives already expanded prompt ids: the model inputs and the number of ``<IMG_CONTEXT>`` tokens the
    prompt must hold for them."""
    kwargs = {"crop_to_patches": True, **mm_kwargs}  # InternVLProcessor's own image default
    inputs = dict(processor.image_processor(images=images, return_tensors="pt", **kwargs))
    patches = inputs.pop("num_patches")
    return inputs, int(sum(int(n) for n in patches)) * int(processor.image_seq_length)


# ------------------------------------------------------------------------------------------ runtime patches


def is_internvl_processor(processor: Any) -> bool:
    return type(processor).__name__.startswith("InternVL") and hasattr(processor, "image_token")


#: Our image-only subclasses of Qwen's processors (:mod:`vlm_capcurriculum.models`) and the model whose
#: ``get_rope_index`` verl binds for the stock class each extends.
_IMAGE_ONLY_ROPE_MODELS = {
    "Qwen2_5_VLImageOnlyProcessor": "Qwen2_5_VLModel",
    "Qwen3VLImageOnlyProcessor": "Qwen3VLModel",
}


def patch_hf_processor() -> None:
    """verl 0.9.1's ``hf_processor`` binds ``get_rope_index`` by the processor's exact class name and returns None
    (a VLM treated as text-only) for any other: return InternVL's processor (1-D RoPE, nothing to bind) and our
    image-only ones (bound as the stock class they extend), with the config attached as verl does."""
    from verl.utils.tokenizer import tokenizer as tokenizer_module

    from .verl_fixes import patch, rebind_in_verl

    @patch(tokenizer_module, "hf_processor")
    def hf_processor(original: Callable[..., Any], name_or_path: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as verl_warnings:  # "Failed to create processor" for ours
            warnings.simplefilter("always")
            processor = original(name_or_path, **kwargs)
        if processor is None:  # only then load again: a class verl knows costs one load, as without the patch
            processor = _internvl_or_image_only_processor(name_or_path, kwargs)
            if processor is not None:
                return processor
        for warning in verl_warnings:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        return processor

    patched = tokenizer_module.hf_processor
    rebind_in_verl("hf_processor", patched.__wrapped__, patched)


def _internvl_or_image_only_processor(name_or_path: Any, kwargs: dict[str, Any]) -> Any:
    """InternVL's processor or one of our image-only ones with the config attached as verl does, else None."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(name_or_path, **kwargs)
        processor = transformers.AutoProcessor.from_pretrained(name_or_path, **kwargs)
    except Exception:  # verl's own warning says why
        return None
    rope_model = _IMAGE_ONLY_ROPE_MODELS.get(type(processor).__name__)
    if rope_model is None and getattr(config, "model_type", None) != FAMILY:
        return None
    processor.config = config
    if rope_model is not None:
        model_class = getattr(transformers, rope_model)
        processor.get_rope_index = types.MethodType(model_class.get_rope_index, processor)
        if hasattr(model_class, "get_vision_position_ids"):
            processor.get_vision_position_ids = types.MethodType(model_class.get_vision_position_ids, processor)
    return processor


class _KeepImageTokenDecode:
    """A tokenizer whose ``decode`` keeps InternVL's image token (``<IMG_CONTEXT>``) while skipping the other
    special tokens, so the processor re-expands one placeholder per image (the agent loop collapsed the runs)."""

    def __init__(self, tokenizer: Any, image_token: str) -> None:
        self._tokenizer = tokenizer
        self._image_token = image_token
        self._image_token_id = tokenizer.convert_tokens_to_ids(image_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def decode(self, token_ids: Any, *args: Any, **kwargs: Any) -> str:
        ids = token_ids.tolist() if hasattr(token_ids, "tolist") else list(token_ids)
        pieces, current = [], []
        for token_id in ids:
            if token_id == self._image_token_id:
                pieces.append(self._tokenizer.decode(current, *args, **kwargs))
                pieces.append(self._image_token)
                current = []
            else:
                current.append(token_id)
        pieces.append(self._tokenizer.decode(current, *args, **kwargs))
        return "".join(pieces)


def patch_prompt_decode() -> None:
    """The agent loop's ``_compute_multi_modal_inputs`` re-renders the prompt with ``skip_special_tokens=True``,
    which drops ``<IMG_CONTEXT>``; for an InternVL processor it runs with a tokenizer that keeps it (a sync method:
    the swap cannot interleave with another coroutine of the worker)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    from .verl_fixes import patch

    @patch(AgentLoopWorker, "_compute_multi_modal_inputs")
    def _compute_multi_modal_inputs(original: Callable[..., Any], self: Any, output: Any, input_ids: Any) -> Any:
        processor = getattr(self, "processor", None)
        if processor is None or not is_internvl_processor(processor):
            return original(self, output, input_ids)
        tokenizer = self.tokenizer
        self.tokenizer = _KeepImageTokenDecode(tokenizer, processor.image_token)
        try:
            return original(self, output, input_ids)
        finally:
            self.tokenizer = tokenizer


def patch_text_only_vision_forward() -> None:
    """``InternVLModel.forward`` runs the vision tower only when ``pixel_values`` are given; under FSDP a rank whose
    micro-batch is text-only then skips the tower's collectives that a rank with an image issues. As verl and EasyR1
    do for Qwen's tower, a text-only forward also runs tower and projector on one blank tile and adds ``0 x`` their
    output's sum to the input embeddings: the FSDP units in the image path's order, the same values, zero vision
    gradients. Patches the transformers class (keyword calls, as ``InternVLForConditionalGeneration`` makes)."""
    import torch
    from transformers.models.internvl.modeling_internvl import InternVLModel

    from .verl_fixes import patch

    @patch(InternVLModel, "forward")
    def forward(original: Callable[..., Any], self: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs.get("pixel_values") is not None or kwargs.get("input_ids") is None:
            return original(self, *args, **kwargs)
        if kwargs.get("inputs_embeds") is not None:
            return original(self, **kwargs)
        input_ids = kwargs.pop("input_ids")
        kwargs.pop("inputs_embeds", None)
        embeds = self.get_input_embeddings()(input_ids)
        size = self.config.vision_config.image_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        blank = torch.zeros(1, 3, height, width, device=embeds.device, dtype=self.dtype)
        features = self.get_image_features(
            pixel_values=blank,
            vision_feature_layer=self.config.vision_feature_layer,
            vision_feature_select_strategy=self.config.vision_feature_select_strategy,
            return_dict=True,
        ).pooler_output
        return original(self, input_ids=None, inputs_embeds=embeds + 0.0 * features.sum().to(embeds.dtype), **kwargs)
