"""The paper's unified output-format prompt, kept once for every backend and data pipeline.

``think_boxed.jinja`` is in EasyR1's ``data.format_prompt`` form (``content`` is the problem); the other backends
render it with :func:`render_prompt` the way EasyR1 does, so every backend trains on the same text. One change from
the reference's ``math.jinja``: its example reads ``<thinking>`` while its instruction and reward require
``<think>``, so ours says ``<think>``; point ``backend.format_prompt`` at the reference's file to reproduce it.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

PROMPTS_DIR = Path(__file__).resolve().parent
#: The default format prompt of every stage and backend.
THINK_BOXED = PROMPTS_DIR / "think_boxed.jinja"


class PromptNotFoundError(FileNotFoundError):
    """A format prompt path that names no file."""


def resolve_prompt(path: str | os.PathLike[str]) -> Path:
    """A format prompt's file: ``path`` as given (absolute, or relative to the current directory), else a file of
    this folder (``think_boxed.jinja``), else relative to the repository root of a clone (as recipes name files)."""
    given = Path(path).expanduser()
    candidates = [given]
    if not given.is_absolute():
        candidates += [PROMPTS_DIR / given, PROMPTS_DIR.parents[1] / given]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.absolute()
    raise PromptNotFoundError(
        f"format prompt {path}: no such file (looked in {', '.join(str(candidate) for candidate in candidates)})"
    )


@lru_cache(maxsize=32)
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def read_prompt(path: str | os.PathLike[str] = THINK_BOXED) -> str:
    """The template text of the format prompt at ``path`` (see :func:`resolve_prompt`)."""
    return _read(resolve_prompt(path))


def render_prompt(problem: str, template: str | None = None) -> str:
    """The user turn for ``problem``: the template (default :data:`THINK_BOXED`) rendered with ``content=problem``,
    stripped first as EasyR1's ``RLHFDataset`` does."""
    from jinja2 import Template

    return Template((template if template is not None else read_prompt()).strip()).render(content=problem)


def prompt_blocks(text: str) -> list[dict[str, str | None]]:
    """Chat content blocks of a rendered prompt: its text pieces, with an image block at every ``<image>`` (the
    conversational form TRL and the processors' chat templates read)."""
    from vlm_capcurriculum.schema import IMAGE_PLACEHOLDER

    blocks: list[dict[str, str | None]] = []
    for position, piece in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if position > 0:
            blocks.append({"type": "image", "text": None})
        if piece:
            blocks.append({"type": "text", "text": piece})
    return blocks
