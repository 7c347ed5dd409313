"""Fixes for verl 0.9.1 bugs that hit our recipes, on every device (``docs/integrations/verl.md``, "verl bugs fixed
for users": symptoms, reproductions, upstream fixes). Each replaces one function of a verl module right after that
module executes (``plugin.AFTER_IMPORT``), process-local, through :func:`patch`.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)


def patch(owner: Any, name: str) -> Callable[[Callable[..., Any]], None]:
    """Decorator: ``owner.<name>`` becomes the decorated function, called with the original first; once per process
    (a second patch of the same name keeps the first). ``__wrapped__`` is the original."""

    def apply(function: Callable[..., Any]) -> None:
        original = getattr(owner, name)
        if getattr(original, "_vlmcc_patched", False):
            return

        @functools.wraps(original)
        def replacement(*args: Any, **kwargs: Any) -> Any:
            return function(original, *args, **kwargs)

        replacement._vlmcc_patched = True  # type: ignore[attr-defined]
        setattr(owner, name, replacement)

    return apply


def rebind_in_verl(name: str, original: Any, replacement: Any) -> None:
    """Make every loaded verl module that bound ``original`` as ``name`` (``from verl.utils import hf_processor``)
    hold ``replacement``; later importers get it from the modules already rebound."""
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] == "verl" and getattr(module, "__dict__", {}).get(name) is original:
            setattr(module, name, replacement)


def fix_qwen2_vl_text_only_embeds() -> None:
    """``qwen2_vl._get_input_embeds`` whose no-pixel branch unpacks the vision output (transformers >= 5)."""
    from verl.models.transformers import qwen2_vl

    @patch(qwen2_vl, "_get_input_embeds")
    def _get_input_embeds(
        original: Callable[..., Any],
        model: Any,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None,
        image_grid_thw: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if pixel_values is not None or pixel_values_videos is not None:
            return original(
                model, input_ids, attention_mask, pixel_values, pixel_values_videos, image_grid_thw, video_grid_thw
            )
        inputs_embeds = model.get_input_embeddings()(input_ids)
        # The same dummy forward as verl (a 4x4-patch image), so the tower joins every rank's FSDP collectives and
        # gets (zero) gradients; only the output is unpacked before use.
        vision = model.config.vision_config
        patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
        pixels = torch.zeros((16, patch_dim), dtype=inputs_embeds.dtype, device=inputs_embeds.device)
        grid = torch.tensor([[1, 4, 4]], dtype=torch.long, device=inputs_embeds.device)
        image_embeds, _ = qwen2_vl.unpack_visual_output(model.visual(pixels, grid_thw=grid))
        inputs_embeds = inputs_embeds + 0.0 * image_embeds.mean()
        if attention_mask is not None:
            attention_mask = attention_mask.to(inputs_embeds.device)
        return inputs_embeds, attention_mask


def _trl_has_value_head() -> bool:
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TRL warns on any import from trl.experimental
            from trl.experimental.ppo import AutoModelForCausalLMWithValueHead
    except ImportError:
        try:
            from trl import AutoModelForCausalLMWithValueHead  # noqa: F401
        except ImportError:
            return False
    return True


def fix_trl_value_head_import() -> None:
    """``apply_monkey_patch`` (every actor/ref model build) imports TRL's ``AutoModelForCausalLMWithValueHead``
    whenever TRL is installed, and TRL >= 1.x no longer has it: the import only patches that class's
    ``state_dict``, so without the class verl is told TRL is absent for that check."""
    from verl.models.transformers import monkey_patch

    if not _trl_has_value_head():
        patch(monkey_patch, "is_trl_available")(lambda original: False)


def rows_ragged(position_ids: torch.Tensor) -> bool:
    """Whether nested 3-D position ids carry the equal-length layout: offsets step through the rows of values
    ``(batch * rows, length)`` by a constant ``rows`` (a ragged-length layout has values ``(rows, total)``)."""
    values, offsets = position_ids.values(), position_ids.offsets()
    batch = len(offsets) - 1
    if values.dim() != 2 or batch < 1 or int(offsets[-1]) != values.shape[0] or values.shape[0] % batch:
        return False
    return bool((offsets.diff() == values.shape[0] // batch).all())


def fix_equal_length_position_ids() -> None:
    """``tensordict_utils.maybe_fix_3d_position_ids`` (and the copies modules bound by name) that first regroups
    equal-length position ids into the ragged-length layout verl assumes."""
    from verl.utils import tensordict_utils

    @patch(tensordict_utils, "maybe_fix_3d_position_ids")
    def maybe_fix_3d_position_ids(original: Callable[..., Any], data: Any) -> None:
        position_ids = data.get("position_ids", None)
        nested = isinstance(position_ids, torch.Tensor) and position_ids.is_nested and position_ids.dim() == 3
        if nested and rows_ragged(position_ids):
            values, batch = position_ids.values(), len(position_ids.offsets()) - 1
            samples = list(values.reshape(batch, values.shape[0] // batch, values.shape[1]).unbind(0))
            data["position_ids"] = tensordict_utils.nested_tensor_from_tensor_list(samples, ragged_idx=2)
        original(data)

    fixed = tensordict_utils.maybe_fix_3d_position_ids
    rebind_in_verl("maybe_fix_3d_position_ids", fixed.__wrapped__, fixed)
