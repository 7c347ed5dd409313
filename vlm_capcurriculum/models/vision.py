"""Where the vision tower lives in each supported model class, for freezing and unfreezing it between stages.

What counts as "the vision tower" follows EasyR1's ``freeze_vision_tower`` (``verl/workers/fsdp_workers.py``), which
the reference recipes use: it calls ``requires_grad_(False)`` on ``model.model.visual``. In Qwen2.5-VL and Qwen3-VL
that module holds the patch embedding, the ViT blocks *and* the patch merger that projects into the LM (plus
Qwen3-VL's deepstack mergers). InternVL splits the same pieces over two sibling modules: ``model.model.vision_tower``
(InternViT) and ``model.model.multi_modal_projector`` (the original ``mlp1``, InternVL's counterpart of Qwen's
merger). We therefore count the projector as part of InternVL's tower, so "vision frozen" means the same thing,
everything between the pixels and the LM's input embeddings, on every family. The LM (``model.model.language_model``
and ``lm_head``) is never part of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

# model class name -> dotted paths (from the ForConditionalGeneration root) of the modules that make up the tower.
VISION_TOWER_PATHS: dict[str, tuple[str, ...]] = {
    "Qwen2_5_VLForConditionalGeneration": ("model.visual",),
    "Qwen3VLForConditionalGeneration": ("model.visual",),
    "InternVLForConditionalGeneration": ("model.vision_tower", "model.multi_modal_projector"),
}
# model class name -> dotted paths of the language model (decoder stack and output head).
LANGUAGE_MODEL_PATHS: dict[str, tuple[str, ...]] = {
    "Qwen2_5_VLForConditionalGeneration": ("model.language_model", "lm_head"),
    "Qwen3VLForConditionalGeneration": ("model.language_model", "lm_head"),
    "InternVLForConditionalGeneration": ("model.language_model", "lm_head"),
}


@dataclass(frozen=True)
class VisionTower:
    """The modules between pixels and the LM's input embeddings, with their parameter-name prefixes in the model."""

    prefixes: tuple[str, ...]
    modules: tuple[nn.Module, ...]

    def named_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters under their full names in the model (as in ``model.named_parameters()``)."""
        for prefix, module in zip(self.prefixes, self.modules, strict=True):
            for name, param in module.named_parameters():
                yield f"{prefix}.{name}", param

    def parameters(self) -> Iterator[nn.Parameter]:
        for _, param in self.named_parameters():
            yield param

    def owns(self, parameter_name: str) -> bool:
        """Whether a full parameter name of the model belongs to the tower."""
        return any(parameter_name == p or parameter_name.startswith(p + ".") for p in self.prefixes)

    def requires_grad_(self, requires_grad: bool = True) -> None:
        """Freeze (``False``) or unfreeze (``True``) every tower parameter."""
        for module in self.modules:
            module.requires_grad_(requires_grad)


def _resolve(model: nn.Module, paths: tuple[str, ...]) -> tuple[nn.Module, ...]:
    return tuple(model.get_submodule(path) for path in paths)


def known_class_name(model: nn.Module) -> str | None:
    """The supported model class ``model`` is an instance of (FSDP2's ``fully_shard`` makes a subclass named
    ``FSDP<class>``, so the class hierarchy is searched), or None."""
    for cls in type(model).__mro__:
        if cls.__name__ in VISION_TOWER_PATHS:
            return cls.__name__
    return None


def _class_name(model: nn.Module) -> str:
    name = known_class_name(model)
    if name is None:
        supported = ", ".join(sorted(VISION_TOWER_PATHS))
        raise TypeError(
            f"no known vision tower layout for {type(model).__name__}; supported model classes: {supported}"
        )
    return name


def vision_tower(model: nn.Module) -> VisionTower:
    """The vision tower of a Qwen2.5-VL, Qwen3-VL or InternVL(3/3.5) model, tiny or real."""
    paths = VISION_TOWER_PATHS[_class_name(model)]
    return VisionTower(prefixes=paths, modules=_resolve(model, paths))


def language_model_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Parameter-name prefixes of the language model (decoder stack and ``lm_head``)."""
    return LANGUAGE_MODEL_PATHS[_class_name(model)]
