"""Hydra override strings from plain values: how a recipe's ``backend.overrides`` reach verl's config.

Why strings and not an OmegaConf merge: the launcher composes the run from exactly the overrides it writes into
``verl.sh`` (verl's own command line), so that command reproduces the run and a typo is Hydra's own error
("Could not override 'x'"); keys verl does not declare take a leading ``+``, as on verl's command line. A string is
left bare only when Hydra reads it back as that same string, otherwise quoted, and a literal ``${`` is escaped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

#: Runs of backslashes that Hydra reads as escapes inside a quoted string: before a quote or at the end.
_ESCAPED_BACKSLASHES = re.compile(r"(\\+)(?='|$)")
_KEY = re.compile(r"^\+{0,2}[A-Za-z_][\w\-]*(\.[\w\-]+)*$")


class OverrideValueError(ValueError):
    """A value (or key) that has no Hydra override spelling."""


@lru_cache(maxsize=1)
def _parser() -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _reads_back_unquoted(text: str) -> bool:
    """Whether Hydra reads ``key=<text>`` as exactly the string ``text`` (no number, bool, null, list, ...)."""
    if not text or "${" in text or not re.fullmatch(r"[\w./:@+\-]+", text):
        return False
    try:
        value = _parser().parse_override(f"key={text}").value()
    except Exception:
        return False
    return isinstance(value, str) and value == text


def _quote(text: str) -> str:
    text = _ESCAPED_BACKSLASHES.sub(lambda match: match.group(1) * 2, text)
    text = text.replace("'", "\\'").replace("${", "\\${")
    return f"'{text}'"


def override_value(value: Any) -> str:
    """``value`` in Hydra's override grammar (what follows ``key=``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return value if _reads_back_unquoted(value) else _quote(value)
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][\w\-]*", key):
                raise OverrideValueError(f"dictionary key {key!r} cannot be written as a Hydra override")
            items.append(f"{key}:{override_value(item)}")
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(override_value(item) for item in value) + "]"
    raise OverrideValueError(f"{type(value).__name__} value {value!r} cannot be written as a Hydra override")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            key = str(key)
            if prefix and key.startswith("+"):
                raise OverrideValueError(f"{prefix}.{key}: a '+' may only start a top-level key")
            _flatten(f"{prefix}.{key}" if prefix else key, item, out)
    else:
        out[prefix] = value


def flatten_overrides(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """The leaves of ``mapping`` by override key: dotted (``data.train_batch_size``) and nested keys give the same
    one; a top-level ``+`` (or ``++``) prefix is kept on every leaf below it; an empty mapping is a leaf."""
    leaves: dict[str, Any] = {}
    for key, value in mapping.items():
        key = str(key)
        plus = key[: len(key) - len(key.lstrip("+"))]
        flat: dict[str, Any] = {}
        _flatten(key[len(plus) :], value, flat)
        for path, leaf in flat.items():
            name = plus + path
            if not _KEY.match(name):
                raise OverrideValueError(f"{name!r} is not a Hydra override key")
            if name in leaves:
                raise OverrideValueError(f"{name!r} is given twice")
            leaves[name] = leaf
    return leaves


def format_overrides(leaves: Mapping[str, Any]) -> list[str]:
    """``key=value`` strings for already flat ``leaves``."""
    return [f"{name}={override_value(value)}" for name, value in leaves.items()]


def escape_interpolations(value: Any) -> Any:
    """``value`` with every ``${`` in its strings escaped, for writing literal values into a Hydra/OmegaConf YAML."""
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, Mapping):
        return {key: escape_interpolations(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [escape_interpolations(item) for item in value]
    return value
