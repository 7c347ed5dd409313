"""Model-side helpers: tiny offline VLMs for tests and the CPU quick start (where each family keeps its vision
tower: :mod:`vlm_capcurriculum.integrations.torch_ops`). Importing this package registers the image-only processors
with ``AutoProcessor``."""

from .processors import (
    InternVLImageOnlyProcessor,
    Qwen2_5_VLImageOnlyProcessor,
    Qwen3VLImageOnlyProcessor,
    register_processors,
)
from .tiny import FAMILIES, build_tiny, build_tiny_processor, load_tiny, save_tiny

__all__ = [
    "FAMILIES",
    "InternVLImageOnlyProcessor",
    "Qwen2_5_VLImageOnlyProcessor",
    "Qwen3VLImageOnlyProcessor",
    "build_tiny",
    "build_tiny_processor",
    "load_tiny",
    "register_processors",
    "save_tiny",
]
