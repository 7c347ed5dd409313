"""Image-caption corpora the perception data is made from: DOCCI and PixMo-Cap.

Formats (confirmed from the datasets' own loaders and cards, see ``data_recipes/README.md``):

* DOCCI ``docci_descriptions.jsonlines`` (Google's release; the reference code calls it ``.jsonl``): one object
  per line with ``example_id`` (``train_00009``, ``test_...``, ``qual_...``), ``split``, ``image_file``
  (``train_00009.jpg``, relative to the release's ``images/`` folder) and ``description``.
* PixMo-Cap (``allenai/pixmo-cap``, parquet or JSON lines): ``image_url``, ``caption`` and ``transcripts``. Images
  are URLs that must be fetched separately, which this package cannot do (no network where it is tested, and
  fetching 700K URLs is a job for a download tool). Two ways to point at fetched images: ``image_column`` names a
  column holding each image's path relative to the image root (add it while downloading), or the images sit in the
  image root named by the SHA-256 of their URL (``<sha256 hex of image_url>.<extension>``, any of
  jpg/jpeg/png/webp/gif/bmp), the layout :func:`pixmo_image_name` documents. A row whose image is not there is a
  ``bad_input`` reject (no model call is spent on a question that could never be filtered).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.inputs import BadRow
from vlm_capcurriculum.schema import RowLocation, iter_rows

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
SOURCES = ("docci", "pixmo")


@dataclass(frozen=True)
class Caption:
    """One image with its caption: what a question is written from."""

    id: str
    image: str
    """Path relative to the image root."""
    caption: str
    source: str
    location: RowLocation
    meta: dict[str, Any] = field(default_factory=dict)
    """The row's other scalar fields (DOCCI's ``split``), kept with the question."""


def pixmo_image_name(image_url: str, extension: str = ".jpg") -> str:
    """The file name a PixMo image is expected under when no image column is given: the SHA-256 of its URL."""
    return hashlib.sha256(image_url.encode("utf-8")).hexdigest() + extension


def pixmo_id(image_url: str) -> str:
    return "pixmo-" + hashlib.sha256(image_url.encode("utf-8")).hexdigest()[:16]


class _HashedImages:
    """The image root's files by stem, listed once (a stat per row and extension would be 6 x 700K calls)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_stem: dict[str, str] | None = None

    def find(self, stem: str) -> str | None:
        if self._by_stem is None:
            self._by_stem = {}
            with os.scandir(self.root) as entries:
                for entry in entries:
                    base, ext = os.path.splitext(entry.name)
                    if ext.lower() in IMAGE_EXTENSIONS and entry.is_file():
                        self._by_stem.setdefault(base, entry.name)
        return self._by_stem.get(stem)


def _text(row: Mapping[str, Any], name: str, problems: list[tuple[str, str]]) -> str | None:
    value = row.get(name)
    if value is None:
        problems.append((name, "missing"))
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append((name, f"must be a non-empty string, got {value!r:.80}"))
        return None
    return value


def read_captions(
    path: str | os.PathLike[str],
    source: str,
    *,
    image_root: str | os.PathLike[str] | None = None,
    image_column: str | None = None,
    limit: int | None = None,
) -> Iterator[Caption | BadRow]:
    """Each row of a caption file as a :class:`Caption`, or a :class:`BadRow` saying what is wrong with it.

    ``image_root``: where the images are; when given, a row whose image file is missing is bad. PixMo needs it
    (or ``image_column``) to know its images at all. Raises ``ValueError`` for an unknown source or a PixMo read
    with neither, :class:`~vlm_capcurriculum.schema.DataFileError` for an unreadable file."""
    if source not in SOURCES:
        raise ValueError(f"unknown caption source {source!r}; expected one of {', '.join(SOURCES)}")
    root = Path(image_root) if image_root is not None else None
    if source == "pixmo" and root is None and image_column is None:
        raise ValueError(
            "PixMo-Cap images are URLs: give the image root they were fetched to (named <sha256 of the URL>.<ext>) "
            "or an image column holding their paths"
        )
    hashed = _HashedImages(root) if root is not None and source == "pixmo" and image_column is None else None
    count = 0
    for location, row in iter_rows(path):
        if limit is not None and count >= limit:
            return
        count += 1
        if not isinstance(row, Mapping):
            yield BadRow(location, (("<row>", "not a JSON object"),))
            continue
        problems: list[tuple[str, str]] = []
        if source == "docci":
            example_id = _text(row, "example_id", problems)
            image = _text(row, "image_file", problems)
            caption = _text(row, "description", problems)
            caption_key, rid = "description", example_id
        else:
            url = _text(row, "image_url", problems)
            caption = _text(row, "caption", problems)
            caption_key, rid, image = "caption", pixmo_id(url) if url else None, None
            if image_column is not None:
                image = _text(row, image_column, problems)
            elif url and hashed is not None:
                image = hashed.find(pixmo_image_name(url, ""))
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
