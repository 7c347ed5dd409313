"""Loading saved weights into a live model *strictly*.

transformers' ``Trainer._load_from_checkpoint`` reads ``model.safetensors`` and calls ``load_state_dict(state,
strict=False)``. Qwen2.5-VL and InternVL save their weights under the checkpoint key names of the original releases
(``model.layers.*``, ``visual.*``, ``vision_tower.*``) and map them back to the module names (``model.language_model.*``,
``model.visual.*``) only inside ``from_pretrained``; so the Trainer's resume silently loads almost nothing (on the
tiny models: 1 of 57 Qwen2.5-VL tensors, 0 of 73 InternVL ones) and keeps training the stale weights.
:func:`load_weights_strict` goes through ``from_pretrained`` of the model's own class (which applies the key
conversions) and then ``load_state_dict(strict=True)``, so any mismatch is an error.
"""

from __future__ import annotations

import os

import torch
from torch import nn


class WeightLoadError(RuntimeError):
    """Saved weights that do not match the model tensor for tensor."""


def load_weights_strict(model: nn.Module, source: str | os.PathLike[str]) -> None:
    """Copy the weights saved in the HF model directory ``source`` into ``model`` (same class), every tensor.

    Costs one extra copy of the model in host memory while it runs.
    """
    saved = type(model).from_pretrained(os.fspath(source), dtype=_dtype(model), local_files_only=True)
    state = saved.state_dict()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightLoadError(f"{source}: the saved weights do not match {type(model).__name__}: {err}") from err
    finally:
        del saved, state


def _dtype(model: nn.Module) -> torch.dtype:
    dtype = getattr(model, "dtype", None)
    if isinstance(dtype, torch.dtype):
        return dtype
    return next(model.parameters()).dtype

