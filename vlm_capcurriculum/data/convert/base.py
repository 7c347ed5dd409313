"""What every converter shares: a reader yields rows in our column names, or the ``(field, message)`` problems of a
bad row. Images given as bytes (a Hugging Face ``Image`` column in parquet) are written once, named by their SHA-256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.request import InputError, sniff_mime
from vlm_capcurriculum.schema import RowLocation

Problems = list[tuple[str, str]]
Converted = dict[str, Any] | Problems
_LETTER_PREFIX = re.compile(r"^\s*\(?([A-J])\s*[.):：]\s*(.*)$", re.DOTALL)


@dataclass
class ImageSink:
    """Where embedded image bytes are written: ``folder``, inside ``root``, which recorded paths are relative to."""

    root: Path
    folder: Path

    def store(self, data: bytes) -> str:
        mime = sniff_mime(data)  # by content only: bytes that are no known image are a bad row
        name = hashlib.sha256(data).hexdigest()[:24] + "." + mime.removeprefix("image/").replace("jpeg", "jpg")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        if not path.exists():
            partial = path.with_name("." + name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
        return path.relative_to(self.root).as_posix()


def image_path(value: Any, sink: ImageSink, field: str, problems: Problems) -> str | None:
    """A path for an image given as a path string, ``{"path": ...}`` or ``{"bytes": ...}``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        data = value.get("bytes")
        if isinstance(data, (bytes, bytearray)) and data:
            try:
                return sink.store(bytes(data))
            except InputError as err:
                problems.append((field, str(err)))
                return None
        if isinstance(value.get("path"), str) and value["path"]:
            return value["path"]
    problems.append((field, f"expected an image path or {{'bytes': ...}}, got {type(value).__name__}"))
    return None


def text_field(row: Mapping[str, Any], name: str, problems: Problems, *, numbers: bool = True) -> str | None:
    value = row.get(name)
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value.strip():
        problems.append((name, "missing" if value is None else f"must be a non-empty string, got {value!r:.60}"))
        return None
    return value


def turns(value: Any, field: str, problems: Problems) -> list[Mapping[str, Any]] | None:
    """A conversation as a list of ``{"from"/"role", "value"/"content"}`` turns."""
    if isinstance(value, Mapping) and all(key.isdigit() for key in value):
        value = [value[key] for key in sorted(value, key=int)]  # a JSON array exported by datasets as columns
    if not isinstance(value, list) or not all(isinstance(turn, Mapping) for turn in value):
        problems.append((field, f"expected a list of conversation turns, got {type(value).__name__}"))
        return None
    return value


def speaker(turn: Mapping[str, Any]) -> str:
    return str(turn.get("from", turn.get("role", ""))).lower()


def utterance(turn: Mapping[str, Any]) -> Any:
    return turn.get("value", turn.get("content"))


def split_options(options: list[Any], field: str, problems: Problems) -> dict[str, str] | None:
    """Options as letter -> text: ``["A. red", "(B) blue"]`` by their own letters, bare texts by position."""
    if not options or not all(isinstance(o, str) and o.strip() for o in options) or len(options) > 10:
        problems.append((field, f"expected 1-10 option strings, got {options!r:.100}"))
        return None
    matches = [_LETTER_PREFIX.match(o) for o in options]
    if all(matches):
        letters = [m.group(1) for m in matches if m]
        if len(set(letters)) == len(letters):
            return {m.group(1): m.group(2).strip() for m in matches if m}
    return {"ABCDEFGHIJ"[i]: o.strip() for i, o in enumerate(options)}


def options_block(choices: Mapping[str, str]) -> str:
    return "Options:\n" + "\n".join(f"{letter}. {text}" for letter, text in choices.items())


def leading_image(problem: str) -> str:
    """``problem`` with exactly one ``<image>`` placeholder: kept where the source put it, else in front."""
    if problem.count("<image>") == 1:
        return problem
    return "<image>" + problem.replace("<image>", "").lstrip("\n")


@dataclass(frozen=True)
class Source:
    """One dataset the converter knows: its reader, how to list a file's rows when ``schema.iter_rows`` is not
    enough, and what a row must be for the reader."""

    name: str
    capability: str
    convert_row: Callable[[RowLocation, Any, ImageSink], Converted]
    rows: Callable[[Path], Iterator[tuple[RowLocation, Any]]] | None = None
    row_types: tuple[type, ...] = (dict,)


def row_index(location: RowLocation) -> int:
    return location.row if location.row is not None else (location.line or 0)
