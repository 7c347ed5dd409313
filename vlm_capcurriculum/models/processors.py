"""The families' processors without a video processor, reloadable through ``AutoProcessor``.

The stock ``Qwen2_5_VLProcessor``, ``Qwen3VLProcessor`` and ``InternVLProcessor`` each require a video processor,
and every video processor in transformers 5 needs torchvision, which cannot be installed on CPU-only machines like
ours. The curriculum only trains on images, so these subclasses drop the ``video_processor`` argument and keep all
image and text behaviour of their parent (token expansion, ``mm_token_type_ids``, chat templates).

Reloading: ``ProcessorMixin.save_pretrained`` writes ``"processor_class": "<our class name>"`` to
``processor_config.json``; ``AutoProcessor.from_pretrained`` resolves that name through the classes registered with
``AutoProcessor.register``. :func:`register_processors` (run when this module is imported) registers the three classes
for their model configs, so ``import vlm_capcurriculum.models`` before ``AutoProcessor.from_pretrained(dir)`` is all
a reload needs: no ``auto_map``, no copied code, no ``trust_remote_code``. A side effect: on this interpreter a
checkpoint of these families whose files name no processor class at all also gets the image-only processor.
"""

from __future__ import annotations

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

# ProcessorMixin.get_attributes() reads the sub-processors from the *signature* of __init__, so each subclass must
# spell out its arguments without `video_processor`; the parent then receives video_processor=None and, finding no
# `video_processor` attribute, skips every video path.


class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without a video processor (no torchvision needed)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class Qwen3VLImageOnlyProcessor(Qwen3VLProcessor):
    """``Qwen3VLProcessor`` without a video processor (no torchvision needed)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: str | None = None, **kwargs):
        super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)


class InternVLImageOnlyProcessor(InternVLProcessor):
    """``InternVLProcessor`` without a video processor (no torchvision needed)."""

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
