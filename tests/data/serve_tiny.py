"""``transformers serve`` with our image-only processors registered: ``python serve_tiny.py [serve options]``.

The stock Qwen2.5-VL / Qwen3-VL processors need a video processor, and every video processor in transformers 5
imports torchvision, which cannot be installed on CPU-only machines. ``vlm_capcurriculum.models`` registers
processor subclasses without one (``models/processors.py``); the saved tiny checkpoints name them, so the server's
``AutoProcessor.from_pretrained`` resolves them once this process has imported our package. The CLI's own
entry point is bypassed only to skip its PyPI version check.
"""

from __future__ import annotations

import sys

from transformers.cli.transformers import app

import vlm_capcurriculum.models  # noqa: F401  (registers the image-only processors with AutoProcessor)

if __name__ == "__main__":
    sys.argv = ["transformers", "serve", *sys.argv[1:]]
    app()
