"""Image-caption corpora the perception data is made from: DOCCI and PixMo-Cap (formats in ``data_recipes/README.md``).

PixMo-Cap's images are URLs, fetched separately (no download step here): ``image_column`` names a column with each
image's path, or the images sit in the image root named by the SHA-256 of their URL (:func:`pixmo_image_name`). A row
whose image is not there is a ``bad_input`` reject: no model call is spent on a question that could never be filtered.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.convert.base import text_field
from vlm_capcurriculum.data.inputs import BadRow
from vlm_capcurriculum.schema import RowLocation, iter_rows

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
SOURCES = ("docci", "pixmo")


@dataclass(frozen=True)
class Caption:
    id: str
    image: str  # relative to the image root
    caption: str
    source: str
    location: RowLocation
    meta: dict[str, Any] = field(default_factory=dict)  # the row's other scalar fields (DOCCI's ``split``)


def pixmo_image_name(image_url: str, extension: str = ".jpg") -> str:
    """The file name a PixMo image is expected under when no image column is given: the SHA-256 of its URL."""
    return hashlib.sha256(image_url.encode("utf-8")).hexdigest() + extension


def _images_by_stem(root: Path) -> dict[str, str]:
    """The image root's files by stem, listed once (a stat per row and extension would be 6 x 700K calls)."""
    by_stem: dict[str, str] = {}
    with os.scandir(root) as entries:
        for entry in entries:
            base, ext = os.path.splitext(entry.name)
            if ext.lower() in IMAGE_EXTENSIONS and entry.is_file():
                by_stem.setdefault(base, entry.name)
    return by_stem


def read_captions(
    path: str | os.PathLike[str],
    source: str,
    *,
    image_root: str | os.PathLike[str] | None = None,
    image_column: str | None = None,
    limit: int | None = None,
) -> Iterator[Caption | BadRow]:
    """Each row of a caption file as a :class:`Caption`, or a :class:`BadRow` saying what is wrong with it; with
    ``image_root``, a row whose image file is missing is bad. Raises ``ValueError`` for an unknown source or a PixMo
    read with neither ``image_root`` nor ``image_column``."""
    if source not in SOURCES:
        raise ValueError(f"unknown caption source {source!r}; expected one of {', '.join(SOURCES)}")
    root = Path(image_root) if image_root is not None else None
    if source == "pixmo" and root is None and image_column is None:
        raise ValueError(
            "PixMo-Cap images are URLs: give the image root they were fetched to (named <sha256 of the URL>.<ext>) "
            "or an image column holding their paths"
        )
    hashed = _images_by_stem(root) if root is not None and source == "pixmo" and image_column is None else None
    for location, row in itertools.islice(iter_rows(path), limit):
        if not isinstance(row, Mapping):
            yield BadRow(location, (("<row>", "not a JSON object"),))
            continue
        problems: list[tuple[str, str]] = []
        if source == "docci":
            example_id = text_field(row, "example_id", problems, numbers=False)
            image = text_field(row, "image_file", problems, numbers=False)
            caption = text_field(row, "description", problems, numbers=False)
            caption_key, rid = "description", example_id
        else:
            url = text_field(row, "image_url", problems, numbers=False)
            caption = text_field(row, "caption", problems, numbers=False)
            caption_key, rid, image = "caption", "pixmo-" + pixmo_image_name(url, "")[:16] if url else None, None
            if image_column is not None:
                image = text_field(row, image_column, problems, numbers=False)
            elif url and hashed is not None:
                image = hashed.get(pixmo_image_name(url, ""))
                if image is None:
                    problems.append(("image_url", f"no image {pixmo_image_name(url, '.*')} in {root} (fetched?)"))
        if image and root is not None and not (root / image).is_file():
            field_name = "image_file" if source == "docci" else (image_column or "image_url")
            problems.append((field_name, f"{image!r} not found (looked at {root / image})"))
        if problems or rid is None or image is None or caption is None:
            yield BadRow(location, tuple(problems))
            continue
        meta = {
            k: v
            for k, v in row.items()
            if k not in (caption_key, "example_id", "image_file", image_column) and isinstance(v, (str, int, float))
        }
        yield Caption(rid, image, caption, source, location, meta)
