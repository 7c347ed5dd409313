"""Fixes for verl 0.9.1 bugs that hit our recipes, applied by the ``verl.plugins`` entry point in every verl process
(on every device: they are not CPU-specific). Each is process-local, replaces one function of a verl module right
after that module executes (``plugin.AFTER_IMPORT``), and is listed in :mod:`.private_api`.

* **Text-only micro-batches on Qwen2/2.5-VL under transformers >= 5** (``verl/models/transformers/qwen2_vl.py``,
  ``_get_input_embeds``): with no pixels, verl runs a dummy vision forward so every FSDP rank touches the tower, then
  adds ``0.0 * image_embeds.mean()``; since transformers 5 the tower returns a ``BaseModelOutputWithPooling``, which
  the image branch unpacks (``unpack_visual_output``) but this branch does not: ``'BaseModelOutputWithPooling' object
  has no attribute 'mean'`` at the first log-prob of any all-text micro-batch (our stage 2, text reasoning).
* **Batches whose sequences all have the same length, on mrope models** (``verl/utils/tensordict_utils.py``,
  ``maybe_fix_3d_position_ids``): TransferQueue packs the per-sample ``(4, length)`` position ids with
  ``torch.nested.as_nested_tensor``, which makes the *row* dimension ragged when every length is equal (values
  ``(batch * 4, length)``, offsets ``0, 4, 8, ...``) instead of the length (values ``(4, total)``). After the Ray hop
  verl forces ``_ragged_idx = 2`` on it, which then indexes the length with the row offsets: ``train_mini_batch``
  (``update_actor``) and the log-prob calls fail in ``unbind``/``to_padded_tensor`` (``Expected cond to be True``,
  ``The size of tensor a (4) must match the size of tensor b (0)``).
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import Any

import torch

logger = logging.getLogger(__name__)


def fix_qwen2_vl_text_only_embeds() -> None:
    """Replace ``qwen2_vl._get_input_embeds`` with one whose no-pixel branch unpacks the vision output."""
    from verl.models.transformers import qwen2_vl

    original = qwen2_vl._get_input_embeds
    if getattr(original, "_vlmcc_fixed", False):
        return

    @functools.wraps(original)
    def _get_input_embeds(
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

    _get_input_embeds._vlmcc_fixed = True  # type: ignore[attr-defined]
    qwen2_vl._get_input_embeds = _get_input_embeds


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
    whenever TRL is installed, and TRL >= 1.x no longer has it (neither at top level nor in
    ``trl.experimental.ppo``): installing ``vlm-capcurriculum[verl,trl]`` breaks every verl model build with an
    ``ImportError``. The import only patches that class's ``state_dict``; without the class there is nothing to
    patch, so verl is told TRL is absent for that check."""
    from verl.models.transformers import monkey_patch

    if _trl_has_value_head() or getattr(monkey_patch.is_trl_available, "_vlmcc_fixed", False):
        return

    def is_trl_available() -> bool:
        return False

    is_trl_available._vlmcc_fixed = True  # type: ignore[attr-defined]
    monkey_patch.is_trl_available = is_trl_available


def rebind_in_verl(name: str, original: Any, replacement: Any) -> None:
    """Make every loaded verl module that bound ``original`` as ``name`` (``from verl.utils import hf_processor``)
    hold ``replacement``; later importers get it from the modules already rebound."""
    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] == "verl" and getattr(module, "__dict__", {}).get(name) is original:
            setattr(module, name, replacement)


#: verl modules that bind ``maybe_fix_3d_position_ids`` by name (``from verl.utils.tensordict_utils import ...``).
POSITION_IDS_FIX_USERS = (
    "verl.workers.engine_workers",
    "verl.workers.engine.base",
    "verl.workers.engine_workers_tinker",
)


def rows_ragged(position_ids: torch.Tensor) -> bool:
    """Whether nested 3-D position ids carry the equal-length layout: offsets step through the rows of values
    ``(batch * rows, length)`` by a constant ``rows`` (a ragged-length layout has values ``(rows, total)``)."""
    values, offsets = position_ids.values(), position_ids.offsets()
    batch = len(offsets) - 1
    if values.dim() != 2 or batch < 1 or int(offsets[-1]) != values.shape[0] or values.shape[0] % batch:
        return False
    return bool((offsets.diff() == values.shape[0] // batch).all())


def fix_equal_length_position_ids() -> None:
    """Replace ``tensordict_utils.maybe_fix_3d_position_ids`` (and the modules' copies that bound it) with one that
    first regroups equal-length position ids into the ragged-length layout verl assumes, then does what it did."""
    import sys

    from verl.utils import tensordict_utils

    original = tensordict_utils.maybe_fix_3d_position_ids
    if not getattr(original, "_vlmcc_fixed", False):

        @functools.wraps(original)
        def maybe_fix_3d_position_ids(data: Any) -> None:
            position_ids = data.get("position_ids", None)
            nested = isinstance(position_ids, torch.Tensor) and position_ids.is_nested and position_ids.dim() == 3
            if nested and rows_ragged(position_ids):
                values, batch = position_ids.values(), len(position_ids.offsets()) - 1
                samples = list(values.reshape(batch, values.shape[0] // batch, values.shape[1]).unbind(0))
                data["position_ids"] = tensordict_utils.nested_tensor_from_tensor_list(samples, ragged_idx=2)
            original(data)

        maybe_fix_3d_position_ids._vlmcc_fixed = True  # type: ignore[attr-defined]
        tensordict_utils.maybe_fix_3d_position_ids = maybe_fix_3d_position_ids
    fixed = tensordict_utils.maybe_fix_3d_position_ids
    for name in POSITION_IDS_FIX_USERS:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "maybe_fix_3d_position_ids"):
            module.maybe_fix_3d_position_ids = fixed
