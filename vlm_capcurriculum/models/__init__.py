"""Model-side helpers: tiny offline VLMs for tests and the CPU quick start, and where each family keeps its
vision tower. Importing this package registers the image-only processors with ``AutoProcessor``."""

from .processors import (
    InternVLImageOnlyProcessor,
    Qwen2_5_VLImageOnlyProcessor,
    Qwen3VLImageOnlyProcessor,
    register_processors,
)
from .tiny import FAMILIES, build_tiny, build_tiny_processor, load_tiny, save_tiny, tiny_config
from .vision import VisionTower, language_model_prefixes, vision_tower

__all__ = [
    "FAMILIES",
    "InternVLImageOnlyProcessor",
    "Qwen2_5_VLImageOnlyProcessor",
    "Qwen3VLImageOnlyProcessor",
    "VisionTower",
    "build_tiny",
    "build_tiny_processor",
    "language_model_prefixes",
    "load_tiny",
    "register_processors",
    "save_tiny",
    "tiny_config",
    "vision_tower",
]
