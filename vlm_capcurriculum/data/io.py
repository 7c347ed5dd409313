"""JSONL in and out: reading with file:line errors, writing all-or-nothing.

An output file either holds a finished run or is untouched: rows go to a hidden ``.NAME.partial`` beside it, fsynced
and renamed over ``NAME`` (atomic on POSIX) only when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from vlm_capcurriculum.data.request import InputError


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for each non-blank line; :class:`InputError` naming file and line for a
    line that is not a JSON object."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as err:
                raise InputError(f"{path}:{number}: not valid JSON ({err})") from None
            if not isinstance(value, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
            yield number, value


def partial_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


class AtomicJsonlWriter:
    """Rows written to a partial file, published as ``path`` by :meth:`commit`; :meth:`abort` discards them. As a
    context manager it commits on normal exit and aborts on an exception."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = partial_path(self.path)
        self._handle: IO[str] | None = open(self.partial, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, row: Mapping[str, Any]) -> None:
        assert self._handle is not None, "writer already closed"
        self._handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        os.replace(self.partial, self.path)
        _fsync_dir(self.path.parent)

    def abort(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> AtomicJsonlWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; best effort where the platform or filesystem does not support it.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
