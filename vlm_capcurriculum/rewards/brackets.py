"""Bracket scans that several parsers need (top-level commas, ``=`` signs, relation operators, separators; whether a
bracket encloses a whole text), written once. Linear in the text; unbalanced closers simply push the depth below
zero, where nothing counts as top level."""

from __future__ import annotations

from collections.abc import Iterator

OPENING = "([{"
CLOSING = ")]}"


def top_level(text: str) -> Iterator[tuple[int, str]]:
    """``(position, character)`` of every character at bracket depth 0 (brackets themselves excluded)."""
    depth = 0
    for i, char in enumerate(text):
        if char in OPENING:
            depth += 1
        elif char in CLOSING:
            depth -= 1
        elif depth == 0:
            yield i, char


def nesting(text: str) -> int:
    """The deepest bracket nesting in ``text`` (escaped braces count too: every parser recurses on them)."""
    depth = deepest = 0
    for char in text:
        if char in OPENING:
            depth += 1
            deepest = max(deepest, depth)
        elif char in CLOSING:
            depth -= 1
    return deepest


def split_top_level(text: str, separators: str = ",;") -> list[tuple[str, str]]:
    """Split ``text`` at separator characters outside any bracket; returns (piece, separator that ended it)."""
    pieces: list[tuple[str, str]] = []
    start = 0
    for i, char in top_level(text):
        if char in separators:
            pieces.append((text[start:i], char))
            start = i + 1
    pieces.append((text[start:], ""))
    return pieces


def encloses(text: str, opening: str = OPENING, closing: str = CLOSING) -> bool:
    """Whether the bracket opening ``text`` closes at its last character (escaped ``\\{``, ``\\}`` are not
    brackets)."""
    depth = 0
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in opening:
            depth += 1
        elif char in closing:
            depth -= 1
            if depth == 0:
                return i == len(text) - 1
    return False
