"""Helpers the data tests import by name (a module of its own: importing from ``conftest`` is unsafe in a suite with
several conftest files)."""

from __future__ import annotations

import io

from vlm_capcurriculum.data.client import RetryPolicy

# Retries in tests: real backoff logic, millisecond delays.
FAST_RETRY = RetryPolicy(max_attempts=4, malformed_attempts=3, base_delay=0.005, max_delay=0.02)


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()
