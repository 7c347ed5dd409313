"""The families' processors without a video processor (every transformers 5 video processor needs torchvision, which
CPU-only machines cannot install; the curriculum trains on images only), reloadable through ``AutoProcessor``: it is
registered on import, else ``AutoProcessor`` silently returns the bare tokenizer, which TRL treats as text-only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from transformers import (
    AutoProcessor,
    InternVLConfig,
    InternVLProcessor,
    Qwen2_5_VLConfig,
    Qwen2_5_VLProcessor,
    Qwen3VLConfig,
    Qwen3VLProcessor,
)


def _drop_missing_images(images: Any) -> Any:
    """``None`` entries of a batched ``images`` list mean "this prompt has no image"; ``None`` if none is left."""
    if not isinstance(images, (list, tuple)):
        return images
    nested = any(isinstance(entry, (list, tuple)) for entry in images)
    if nested:
        kept = [[] if entry is None else entry for entry in images]
        return kept if any(len(entry) for entry in kept) else None
    kept = [entry for entry in images if entry is not None]
    return kept or None


class _MixedBatchImages:
    """Reads ``None`` in a batched ``images`` list (TRL's mark for a text-only prompt in a mixed batch) as no image."""

    def __call__(self, images: Any = None, text: Any = None, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(_drop_missing_images(images), text, *args, **kwargs)  # type: ignore[misc]


# ProcessorMixin.get_attributes() reads the sub-processors from the *signature* of __init__, so each subclass must
# spell out its arguments without `video_processor`; the parent then receives video_processor=None and, finding no
# `video_processor` attribute, skips every video path. transformers 4.x (EasyR1's pin) reads them from the class list
# `attributes` instead (5 ignores it): the same two names there.
_IMAGE_ONLY_ATTRIBUTES = ["image_processor", "tokenizer"]


class Qwen2_5_VLImageOnlyProcessor(_MixedBatchImages, Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without a video processor (no torchvision needed)."""

    attributes = _IMAGE_ONLY_ATTRIBUTES

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class Qwen3VLImageOnlyProcessor(_MixedBatchImages, Qwen3VLProcessor):
    """``Qwen3VLProcessor`` without a video processor (no torchvision needed)."""

    attributes = _IMAGE_ONLY_ATTRIBUTES

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class InternVLImageOnlyProcessor(_MixedBatchImages, InternVLProcessor):
    """``InternVLProcessor`` without a video processor (no torchvision needed)."""

    attributes = _IMAGE_ONLY_ATTRIBUTES

    def __init__(
        self,
        image_processor: Any = None,
        tokenizer: Any = None,
        image_seq_length: int = 256,
        chat_template: str | None = None,
        **kwargs,
    ):
        super().__init__(image_processor, tokenizer, None, image_seq_length, chat_template=chat_template, **kwargs)


IMAGE_ONLY_PROCESSORS: dict[type, type] = {
    Qwen2_5_VLConfig: Qwen2_5_VLImageOnlyProcessor,
    Qwen3VLConfig: Qwen3VLImageOnlyProcessor,
    InternVLConfig: InternVLImageOnlyProcessor,
}


def register_processors() -> None:
    """Make ``AutoProcessor`` able to resolve the image-only processors by name (idempotent)."""
    for config_class, processor_class in IMAGE_ONLY_PROCESSORS.items():
        AutoProcessor.register(config_class, processor_class, exist_ok=True)


register_processors()


AUTO_MAP_MODULE = "capcurriculum_processor"


def save_processor(processor: Any, path: str | os.PathLike[str]) -> None:
    """``processor.save_pretrained(path)`` that plain ``AutoProcessor.from_pretrained(path)`` cannot misread: for
    our classes an ``auto_map`` and a module importing the class from this package, so a process that never imported
    :mod:`vlm_capcurriculum.models` gets transformers' request for ``trust_remote_code=True``, not a bare tokenizer.
    """
    processor.save_pretrained(path)
    cls = type(processor)
    if cls not in IMAGE_ONLY_PROCESSORS.values():
        return
    folder = Path(path)
    (folder / f"{AUTO_MAP_MODULE}.py").write_text(
        f'"""{cls.__name__} of vlm-capcurriculum (pip install vlm-capcurriculum): AutoProcessor auto_map."""\n\n'
        f"from {cls.__module__} import {cls.__name__}\n\n__all__ = [{cls.__name__!r}]\n",
        encoding="utf-8",
    )
    config_file = folder / "processor_config.json"
    if not config_file.is_file():  # transformers 4.x writes one only for processor-level settings; it also reads here
        config_file = folder / "preprocessor_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["auto_map"] = {"AutoProcessor": f"{AUTO_MAP_MODULE}.{cls.__name__}"}
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
