"""Characters outside every bracket: the one scan that several parsers need (top-level commas, ``=`` signs,
relation operators, separators), written once. Linear in the text; unbalanced closers simply push the depth below
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
