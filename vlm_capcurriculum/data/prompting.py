"""Prompt templates of the data pipelines: packaged defaults (``prompts/*.txt``) or the user's own files.

Placeholders are ``{name}`` and are replaced literally, one name at a time, so every other brace in a template is
text (a JSON example needs no escaping, a caption with braces cannot break formatting). A template missing one
of the placeholders its pipeline fills is an :class:`InputError` at load time, before any request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vlm_capcurriculum.data.request import InputError


@dataclass(frozen=True)
class PromptTemplate:
    text: str
    source: str  # where the text came from (``package:NAME`` or a path), for messages and reports

    @classmethod
    def packaged(cls, name: str, *, required: Sequence[str] = ()) -> PromptTemplate:
        """A default template shipped in ``vlm_capcurriculum/data/prompts/``."""
        text = resources.files("vlm_capcurriculum.data").joinpath("prompts", name).read_text(encoding="utf-8")
        return cls(text, f"package:{name}").checked(required)

    @classmethod
    def training_format(cls) -> PromptTemplate:
        """The trainer's user turn (:func:`vlm_capcurriculum.prompts.render_prompt`) with a ``{problem}`` slot, so
        that a pipeline asks a question exactly as training will."""
        from vlm_capcurriculum.prompts import THINK_BOXED, render_prompt

        return cls(render_prompt("{problem}"), str(THINK_BOXED))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, required: Sequence[str] = ()) -> PromptTemplate:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: cannot read prompt template ({err})") from err
        return cls(text, str(path)).checked(required)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None, default: str, *, required: Sequence[str] = ()) -> PromptTemplate:
        """``path`` when given, else the packaged ``default``."""
        return cls.packaged(default, required=required) if path is None else cls.from_file(path, required=required)

    def checked(self, required: Sequence[str]) -> PromptTemplate:
        missing = [name for name in required if "{" + name + "}" not in self.text]
        if missing:
            names = ", ".join("{" + name + "}" for name in missing)
            raise InputError(f"{self.source}: prompt template lacks the placeholder(s) {names}")
        return self

    def fill(self, **values: str) -> str:
        """The text with each ``{name}`` replaced, in one pass (a value containing ``{other}`` stays as it is)."""
        if not values:
            return self.text.rstrip("\n")
        pattern = re.compile("|".join(re.escape("{" + name + "}") for name in values))
        return pattern.sub(lambda match: values[match.group(0)[1:-1]], self.text.rstrip("\n"))
