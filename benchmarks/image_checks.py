"""What the plan-time image checks cost per image (run by hand: ``python benchmarks/image_checks.py``).

``vlmcc plan`` and every launcher check each record's image (inside the root, present, within the pixel limit,
decodes completely: ``vlm_capcurriculum/schema/images.py``). The table compares, in the same run and on the same
files, the checks without decoding (what runs without pillow), the full checks, and reading every byte of each
file (the floor of any check that looks at the whole file); the last column is the full checks on a thread per
core (``ImageChecker.prefetch``, what the readers do). JPEGs are photo-sized (DOCCI's images are about
1500x2000); PNGs are the size of a chart or a geometry figure.

    python benchmarks/image_checks.py [--count 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageFilter
from rich.console import Console
from rich.table import Table

from vlm_capcurriculum.schema import ImageChecker, ImageChecks

FORMATS = {"JPEG 1536x2048": ("jpg", (1536, 2048)), "PNG 800x600": ("png", (800, 600))}


def make_images(root: Path, suffix: str, size: tuple[int, int], count: int) -> list[str]:
    # smoothed noise: compresses like a photo (a flat image would make decoding look free)
    base = Image.effect_noise(size, 64).convert("RGB").filter(ImageFilter.GaussianBlur(2))
    names = []
    for i in range(count):
        name = f"{i}.{suffix}"
        base.rotate(i % 4 * 90, expand=False).save(root / name, quality=90)
        names.append(name)
    return names


def per_image(action, names: list[str]) -> float:
    start = time.perf_counter()
    for name in names:
        action(name)
    return (time.perf_counter() - start) / len(names) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200, help="images per format")
    args = parser.parse_args()
    table = Table(title="plan-time image checks, ms per image")
    for column in ("images", "read bytes", "no decoding", "full checks", "full / read", "prefetched (threads)"):
        table.add_column(column, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for label, (suffix, size) in FORMATS.items():
            names = make_images(root, suffix, size, args.count)
            read = per_image(lambda name: (root / name).read_bytes(), names)
            # a fresh checker per pass: verdicts are cached per path
            light = ImageChecker(ImageChecks(decode=False))
            bare = per_image(lambda name, c=light: c.problem(name, root), names)
            full_checker = ImageChecker()
            full = per_image(lambda name, c=full_checker: c.problem(name, root), names)
            threaded = ImageChecker()
            start = time.perf_counter()
            threaded.prefetch((name, root) for name in names)  # what the readers do per batch of rows
            pooled = (time.perf_counter() - start) / len(names) * 1000
            table.add_row(label, f"{read:.2f}", f"{bare:.3f}", f"{full:.2f}", f"{full / read:.1f}x", f"{pooled:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
