"""InternVL3 / InternVL3.5 (the transformers-native ``InternVLForConditionalGeneration``, ``OpenGVLab/*-hf``) on EasyR1.

EasyR1 @ b44b311 loads these checkpoints through ``AutoModelForImageTextToText`` without remote code, but trains them
wrongly in five places. Each fix below is applied by our worker (:class:`.worker.CurriculumFSDPWorker`) in its own
process at run time; EasyR1's files stay as installed.

1. Padding-free (``worker.actor.padding_free=true``, kept by the reference scripts): ``apply_ulysses_patch`` raises
   ``NotImplementedError`` for model type ``internvl``. What it does for a supported text model is swap in its
   varlen flash attention, which separates packed sequences by their position ids. InternVL's language model is a
   Qwen2 (InternVL3) or Qwen3 (InternVL3.5) decoder with 1-D RoPE, and the image features are scattered into the
   packed ``<IMG_CONTEXT>`` tokens in sample order, the order ``pixel_values`` are concatenated in: so the patch for
   the *language model's* type is the right one (:func:`padding_free_patch`). Ulysses sequence parallelism slices
   the packed tokens across ranks while every rank gets all images; it is refused (:func:`check_ulysses`).
2. Tiling: ``FSDPWorker._process_multi_modal_inputs`` calls ``processor.image_processor`` alone. The -hf checkpoints
   save ``crop_to_patches: false`` in their image-processor config and ``InternVLProcessor`` turns tiling on in its
   call, so the prompt holds N tiles of ``<IMG_CONTEXT>`` while the training inputs got one tile ("Image features
   and image tokens do not match"). :func:`tiling_processor` gives that method the processor's own image settings.
3. FSDP units: on transformers 4.x ``InternVLPreTrainedModel`` declares no ``_no_split_modules``, so EasyR1's wrap
   policy finds no layer class and wraps the whole model as one unit (every step gathers all weights at once). We
   take the classes transformers itself collects from the sub-models (InternViT layers, decoder layers).
4. Text-only micro-batches: ``InternVLModel.forward`` runs the vision tower only when ``pixel_values`` is given. With
   the tower's layers in their own FSDP units, a rank whose micro-batch has no image skips their all-gathers while
   another rank issues them: the collectives mismatch (a hang or a crash). As EasyR1 does for Qwen
   (``qwen2_vl_base_forward``), a text-only forward runs one blank tile through tower and projector and adds
   ``0 * mean`` of the result (:func:`dummy_vision_forward`).
5. ``freeze_vision_tower`` looks for ``model.visual``, which InternVL does not have, and silently trains the tower.
   We freeze what the project calls InternVL's tower (InternViT *and* ``multi_modal_projector``,
   ``integrations.torch_ops.vision_tower``) and, as EasyR1 does for Qwen, switch FSDP to ``use_orig_params``.

What only a GPU node with vLLM can confirm (see docs/integrations/easyr1.md): vLLM's expansion of the ``<image>``
placeholder in the raw prompt ids, rollout vs. actor log-prob agreement, the flash-attention varlen kernels, NCCL.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

MODEL_TYPE = "internvl"
PROCESSOR_CLASS = "InternVLProcessor"


class InternVLUnsupportedError(ValueError):
    """A setting that EasyR1 cannot run correctly for InternVL (refused before anything is built)."""


def is_internvl(config_or_model: Any) -> bool:
    """Whether a model config (or a model, or an FSDP module around one) is InternVL."""
    config = getattr(config_or_model, "config", config_or_model)
    if not hasattr(config, "model_type") and hasattr(config_or_model, "module"):
        config = getattr(config_or_model.module, "config", None)
    return getattr(config, "model_type", None) == MODEL_TYPE


def is_internvl_processor(processor: Any) -> bool:
    """Whether ``processor`` is (a subclass of) transformers' ``InternVLProcessor``."""
    return processor is not None and any(cls.__name__ == PROCESSOR_CLASS for cls in type(processor).__mro__)


def check_ulysses(ulysses_size: int) -> None:
    """Refuse Ulysses sequence parallelism for InternVL (see the module doc, point 1)."""
    if ulysses_size > 1:
        raise InternVLUnsupportedError(
            f"worker.actor.ulysses_size={ulysses_size}: Ulysses sequence parallelism is not wired for InternVL on "
            "EasyR1 (it slices the packed prompt tokens across ranks while every rank receives all images, so image "
            "features and <IMG_CONTEXT> tokens no longer match); use ulysses_size=1"
        )


# ----------------------------------------------------------------------------------------------- 1. padding-free
def padding_free_patch(original: Callable[[str], None], text_model_type: Callable[[], str]) -> Callable[[str], None]:
    """``apply_ulysses_patch`` that, for ``internvl``, applies EasyR1's patch for the language model's type."""

    def apply_ulysses_patch(model_type: str) -> None:
        if model_type == MODEL_TYPE:
            model_type = text_model_type()
        original(model_type)

    apply_ulysses_patch.__wrapped__ = original  # type: ignore[attr-defined]
    return apply_ulysses_patch


# ----------------------------------------------------------------------------------------------- 2. tiling
def image_kwargs(processor: Any) -> dict[str, Any]:
    """The image-processor arguments ``InternVLProcessor.__call__`` adds by default (``crop_to_patches=True``)."""
    from transformers.models.internvl.processing_internvl import InternVLProcessorKwargs

    return dict(InternVLProcessorKwargs._defaults.get("images_kwargs", {}))


class _TilingImageProcessor:
    """``processor.image_processor`` as ``InternVLProcessor`` calls it: same tiling; only the model's inputs."""

    def __init__(self, processor: Any) -> None:
        self._image_processor = processor.image_processor
        self._kwargs = image_kwargs(processor)

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
def no_split_modules(model: nn.Module) -> list[str]:
    """The layer classes FSDP should wrap one by one: the sub-models' ``_no_split_modules`` (transformers' own walk)."""
    return sorted(model._get_no_split_modules("auto"))  # type: ignore[operator]


def _dummy_vision_features(model: nn.Module, like: torch.Tensor) -> torch.Tensor:
    vision = model.config.vision_config
    height, width = vision.image_size if isinstance(vision.image_size, (list, tuple)) else (vision.image_size,) * 2
    pixel_values = torch.zeros(1, vision.num_channels, height, width, dtype=like.dtype, device=like.device)
    return model.get_image_features(pixel_values=pixel_values)  # type: ignore[operator]


def dummy_vision_forward(inner: nn.Module) -> None:
    """Make ``inner`` (an ``InternVLModel``) run its tower and projector on every forward (module doc, point 4).

    Bound to this instance only (the actor's and the reference's model), not to the class: a rollout model in the
    same process keeps the stock forward.
    """
    if getattr(inner, "_vlmcc_dummy_vision", False):
        return
    stock = inner.forward

    def forward(self: nn.Module, input_ids: Any = None, pixel_values: Any = None, **kwargs: Any) -> Any:
        if pixel_values is None and kwargs.get("past_key_values") is None:
            inputs_embeds = kwargs.pop("inputs_embeds", None)
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(input_ids)  # type: ignore[operator]
            features = _dummy_vision_features(self, inputs_embeds)
            kwargs["inputs_embeds"] = inputs_embeds + 0.0 * features.mean().to(inputs_embeds.dtype)
            return stock(input_ids=None, pixel_values=None, **kwargs)
        return stock(input_ids=input_ids, pixel_values=pixel_values, **kwargs)

    inner.forward = types.MethodType(forward, inner)
    inner._vlmcc_dummy_vision = True


def freeze_vision_tower(model: nn.Module) -> list[str]:
    """``requires_grad_(False)`` on InternViT and the projector; returns their prefixes."""
    from vlm_capcurriculum.integrations.torch_ops import vision_tower

    tower = vision_tower(model)
    tower.requires_grad_(False)
    return list(tower.prefixes)


def prepare_model(model: nn.Module, *, freeze: bool) -> dict[str, Any]:
    """Fixes 3-5 on a freshly loaded InternVL model, before FSDP wraps it; returns what was done (for the log)."""
    done: dict[str, Any] = {}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # under LoRA: a peft model
    if not model._no_split_modules:  # transformers 4.x; transformers 5 declares them
        model._no_split_modules = no_split_modules(base)
        done["no_split_modules"] = list(model._no_split_modules)
    dummy_vision_forward(base.model)
    done["dummy_vision_forward"] = True
    if freeze:
        done["frozen"] = freeze_vision_tower(base)
    return done


def wrap_policy_patch(
    original: Callable[..., Any],
    *,
    freeze: Callable[[], bool],
    on_freeze: Callable[[], None],
    log: Callable[[str], None],
) -> Callable[..., Any]:
    """``get_fsdp_wrap_policy`` that prepares an InternVL model first (module doc, points 3-5).

    EasyR1's ``_build_model_optimizer`` calls it after loading the model (and after its own freeze attempt) and
    before wrapping it with FSDP and building the optimizer from the trainable parameters: the one moment all three
    fixes must happen. ``on_freeze`` sets ``use_orig_params`` (the root unit then mixes frozen and trainable weights).
    """

    def get_fsdp_wrap_policy(model: nn.Module, is_lora_model: bool = False) -> Any:
        if is_internvl(model):
            frozen = freeze()
            if frozen:
                on_freeze()
            log(f"InternVL prepared for EasyR1: {prepare_model(model, freeze=frozen)}")
        return original(model, is_lora_model=is_lora_model)

    get_fsdp_wrap_policy.__wrapped__ = original  # type: ignore[attr-defined]
    return get_fsdp_wrap_policy
