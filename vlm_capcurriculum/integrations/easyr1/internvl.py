"""InternVL3 / InternVL3.5 (the transformers-native ``InternVLForConditionalGeneration``, ``OpenGVLab/*-hf``) on EasyR1.

EasyR1 @ b44b311 loads these checkpoints without remote code but trains them wrongly in five places (the table in
docs/integrations/easyr1.md, "Supported backbones"). Our worker (:class:`.worker.CurriculumFSDPWorker`) applies each
fix below in its own process at run time; EasyR1's files stay as installed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from torch import nn

MODEL_TYPE = "internvl"


class InternVLUnsupportedError(ValueError):
    """A setting that EasyR1 cannot run correctly for InternVL (refused before anything is built)."""


def is_internvl(config_or_model: Any) -> bool:
    """Whether a model config (or a model) is InternVL."""
    return getattr(getattr(config_or_model, "config", config_or_model), "model_type", None) == MODEL_TYPE


def is_internvl_processor(processor: Any) -> bool:
    """Whether ``processor`` is (a subclass of) transformers' ``InternVLProcessor``."""
    return processor is not None and any(cls.__name__ == "InternVLProcessor" for cls in type(processor).__mro__)


def check_ulysses(ulysses_size: int) -> None:
    """Refuse Ulysses sequence parallelism for InternVL: it slices the packed tokens, not the images."""
    if ulysses_size > 1:
        raise InternVLUnsupportedError(
            f"worker.actor.ulysses_size={ulysses_size}: Ulysses sequence parallelism is not wired for InternVL on "
            "EasyR1 (it slices the packed prompt tokens across ranks while every rank receives all images, so image "
            "features and <IMG_CONTEXT> tokens no longer match); use ulysses_size=1"
        )


# ----------------------------------------------------------------------------------------------- 1. padding-free
def padding_free_patch(original: Callable[[str], None], text_model_type: Callable[[], str]) -> Callable[[str], None]:
    """``apply_ulysses_patch`` that, for ``internvl`` (which EasyR1 refuses), applies the patch of the language model's
    type: a Qwen2/Qwen3 decoder with 1-D RoPE whose varlen attention separates the packed sequences by position ids,
    and the image features fill the ``<IMG_CONTEXT>`` tokens in sample order."""

    def apply_ulysses_patch(model_type: str) -> None:
        if model_type == MODEL_TYPE:
            model_type = text_model_type()
        original(model_type)

    return apply_ulysses_patch


# ----------------------------------------------------------------------------------------------- 2. tiling
class _TilingImageProcessor:
    """``processor.image_processor`` as ``InternVLProcessor`` calls it: same tiling; only the model's inputs."""

    def __init__(self, processor: Any) -> None:
        from transformers.models.internvl.processing_internvl import InternVLProcessorKwargs

        self._image_processor = processor.image_processor
        # what InternVLProcessor.__call__ adds (crop_to_patches=True); the -hf checkpoints save false
        self._kwargs = dict(InternVLProcessorKwargs._defaults.get("images_kwargs", {}))

    def __call__(self, images: Any = None, **kwargs: Any) -> dict[str, Any]:
        outputs = dict(self._image_processor(images=images, **{**self._kwargs, **kwargs}))
        outputs.pop("num_patches", None)  # tiles per image: the processor's bookkeeping, not a model input
        return outputs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._image_processor, name)


def tiling_processor(processor: Any) -> Any:
    """A stand-in for ``worker.processor`` inside ``_process_multi_modal_inputs`` (it reads only ``image_processor``)."""
    return types.SimpleNamespace(image_processor=_TilingImageProcessor(processor))


# ----------------------------------------------------------------------------------------------- 3.-5. the model
def dummy_vision_forward(inner: nn.Module) -> None:
    """Make ``inner`` (an ``InternVLModel``) run its tower and projector on every forward: with the tower's layers in
    their own FSDP units, a rank whose micro-batch has no image would skip the all-gathers another rank issues. As
    EasyR1 does for Qwen, a text-only forward adds ``0 * mean`` of one blank tile's features. Bound to this instance
    only: a rollout model in the same process keeps the stock forward.
    """
    if getattr(inner, "_vlmcc_dummy_vision", False):
        return
    stock = inner.forward

    def forward(self: nn.Module, input_ids: Any = None, pixel_values: Any = None, **kwargs: Any) -> Any:
        if pixel_values is None and kwargs.get("past_key_values") is None:
            inputs_embeds = kwargs.pop("inputs_embeds", None)
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)  # type: ignore[operator]
            vision = self.config.vision_config
            size = vision.image_size if isinstance(vision.image_size, (list, tuple)) else (vision.image_size,) * 2
            blank = inputs_embeds.new_zeros(1, vision.num_channels, *size)
            features = self.get_image_features(pixel_values=blank)  # type: ignore[operator]
            kwargs["inputs_embeds"] = inputs_embeds + 0.0 * features.mean().to(inputs_embeds.dtype)
            return stock(input_ids=None, pixel_values=None, **kwargs)
        return stock(input_ids=input_ids, pixel_values=pixel_values, **kwargs)

    inner.forward = types.MethodType(forward, inner)
    inner._vlmcc_dummy_vision = True


def prepare_model(model: nn.Module, *, freeze: bool) -> dict[str, Any]:
    """Fixes 3-5 on a freshly loaded InternVL model, before FSDP wraps it; returns what was done (for the log).

    3. transformers 4.x declares no ``_no_split_modules`` for InternVL, so EasyR1's wrap policy would make the whole
       model one FSDP unit: take the classes transformers collects from the sub-models. 5. ``freeze_vision_tower``
       looks for ``model.visual`` and silently trains InternVL's tower: freeze InternViT *and* the projector.
    """
    from vlm_capcurriculum.integrations.torch_ops import vision_tower

    done: dict[str, Any] = {}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under LoRA: a peft model
    if not model._no_split_modules:  # transformers 4.x; transformers 5 declares them
        model._no_split_modules = sorted(base._get_no_split_modules("auto"))  # type: ignore[operator]
        done["no_split_modules"] = list(model._no_split_modules)
    dummy_vision_forward(base.model)
    done["dummy_vision_forward"] = True
    if freeze:
        tower = vision_tower(base)
        tower.requires_grad_(False)
        done["frozen"] = list(tower.prefixes)
    return done


def wrap_policy_patch(
    original: Callable[..., Any],
    *,
    freeze: Callable[[], bool],
    fsdp_config: Any,
    log: Callable[[str], None],
) -> Callable[..., Any]:
    """``get_fsdp_wrap_policy`` that prepares an InternVL model first (:func:`prepare_model`): EasyR1's
    ``_build_model_optimizer`` calls it after loading the model and before FSDP wraps it and the optimizer takes the
    trainable parameters, the one moment these fixes must happen."""

    def get_fsdp_wrap_policy(model: nn.Module, is_lora_model: bool = False) -> Any:
        if is_internvl(model):
            frozen = freeze()
            if frozen:  # the root unit then mixes frozen and trainable weights (as EasyR1's own freeze for Qwen)
                fsdp_config.use_orig_params = True
            log(f"InternVL prepared for EasyR1: {prepare_model(model, freeze=frozen)}")
        return original(model, is_lora_model=is_lora_model)

    return get_fsdp_wrap_policy
