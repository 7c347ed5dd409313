"""Image checks when records are read (``vlmcc plan``, every launcher, the data pipelines' inputs): a bad image
otherwise passes the plan and crashes training hours later with a PIL error that names neither data file nor line.

Each image is checked, in order: inside the image root (on the normalised path, so a symlink inside the root to
another disk stays allowed), present, at most ``max_pixels`` read from the header before decoding (a decompression
bomb takes gigabytes once decoded), and decodes. JPEGs decode at 1/8 scale (``draft``); PNGs are verified chunk by
chunk (CRCs) without inflating the pixels, which misses corrupt data with correct CRCs. Without Pillow only the
first two checks run. Verdicts are cached per path; ``python benchmarks/image_checks.py`` measures the cost.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from vlm_capcurriculum.schema.issues import Reason

# Pillow's own decompression-bomb warning threshold (PIL.Image.MAX_IMAGE_PIXELS, 1024 * 1024 * 1024 // 4 // 3):
# far above any image a VLM processor keeps (Qwen2.5-VL resizes to at most 12845056 pixels by default).
DEFAULT_MAX_PIXELS = 89_478_485


@dataclass(frozen=True)
class ImageChecks:
    """What :class:`ImageChecker` verifies of each image (see the module docstring)."""

    decode: bool = True
    max_pixels: int = DEFAULT_MAX_PIXELS
    outside_root: bool = False


def pillow_available() -> bool:
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        return False
    return True


class ImageChecker:
    """Checks image paths against :class:`ImageChecks`, caching the verdict per path."""

    def __init__(self, checks: ImageChecks | None = None) -> None:
        self.checks = checks or ImageChecks()
        self.decoding = self.checks.decode and pillow_available()
        self._verdicts: dict[tuple[str, str], tuple[Reason, str] | None] = {}

    def problem(self, image: str, root: Path) -> tuple[Reason, str] | None:
        """``(reason, message)`` when ``image`` (a record's path, relative to ``root`` or absolute) is unusable."""
        key = (str(root), image)
        if key not in self._verdicts:
            with _pillow_limit_off():
                self._verdicts[key] = self._check(image, root)
        return self._verdicts[key]

    def prefetch(self, images: Iterable[tuple[str, Path]]) -> None:
        """Check ``(image, root)`` pairs on a thread per core ahead of :meth:`problem` (Pillow decodes without
        the GIL); only worth it when decoding."""
        todo = {(str(root), image): (image, root) for image, root in images}
        todo = {key: pair for key, pair in todo.items() if key not in self._verdicts}
        if not self.decoding or len(todo) < 2:
            return
        with _pillow_limit_off(), ThreadPoolExecutor(min(len(todo), os.cpu_count() or 1)) as pool:
            verdicts = pool.map(lambda pair: self._check(*pair), todo.values())
            self._verdicts.update(zip(todo, verdicts, strict=True))

    def _check(self, image: str, root: Path) -> tuple[Reason, str] | None:
        path = os.path.normpath(root / image)
        base = os.path.normpath(root)
        if not self.checks.outside_root and os.path.commonpath([path, base]) != base:
            return (
                "image_outside_root",
                f"{image!r} is outside the image root {base} (set the stage's image_root to a folder holding "
                "it, or vlmcc plan --allow-images-outside-root)",
            )
        if not os.path.isfile(path):
            return "image_not_found", f"{image!r} not found (looked at {path})"
        if self.decoding:
            return _decode_problem(image, path, self.checks.max_pixels)
        return None


@contextlib.contextmanager
def _pillow_limit_off() -> Iterator[None]:
    """Pillow's own bomb check off (ours reads the same header, with our limit); it would raise or warn inside
    ``open()``. Set here, around a whole batch, not per image: the setting is global to the process."""
    try:
        from PIL import Image
    except ImportError:
        yield
        return
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _decode_problem(image: str, path: str, max_pixels: int) -> tuple[Reason, str] | None:
    from PIL import Image

    try:
        with Image.open(path) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                return (
                    "image_too_large",
                    f"{image!r} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels} "
                    "(a decompression bomb?)",
                )
            if width * height == 0:
                return "image_unreadable", f"{image!r} has no pixels ({width}x{height})"
            if opened.format == "PNG":
                opened.verify()  # every chunk present with its CRC, without inflating the pixels
            else:
                if opened.format == "JPEG":
                    opened.draft(opened.mode, (max(1, width // 8), max(1, height // 8)))
                opened.load()
    except Exception as err:  # Pillow raises many types for bad files (OSError, SyntaxError, ValueError, ...)
        return "image_unreadable", f"{image!r} cannot be decoded ({type(err).__name__}: {err})"
    return None
