"""Helpers the data tests import by name (a module of its own: importing from ``conftest`` is unsafe in a suite with
several conftest files)."""

from __future__ import annotations

import io
import sqlite3
from contextlib import closing

from vlm_capcurriculum.data.client import RetryPolicy

# Retries in tests: real backoff logic, millisecond delays.
FAST_RETRY = RetryPolicy(max_attempts=4, malformed_attempts=3, base_delay=0.005, max_delay=0.02)


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def cached_samples(path: object, model: str | None = None) -> int:
    """Samples in an answer cache file (of one model, or all), read from its ``samples`` table."""
    query, args = (
        ("SELECT COUNT(*) FROM samples", ())
        if model is None
        else ("SELECT COUNT(*) FROM samples WHERE model = ?", (model,))
    )
    with closing(sqlite3.connect(path)) as db:
        return int(db.execute(query, args).fetchone()[0])
