"""Load a run config: a Hydra recipe (defaults list and config groups) or a plain YAML, plus overrides.

The file's directory is Hydra's config directory, so a recipe's groups resolve next to it. Interpolations stay lazy;
``parse_curriculum`` names a missing environment variable by the key that needs it. Hydra cannot override inside
a referenced stage (``stages: ['${stages.perception}']``), so ``curriculum.stages.N.<key>`` on one is retargeted to
the node it refers to. Relative data paths resolve against the current directory when data is loaded, as in EasyR1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config that cannot be composed (missing file or group option, bad override, YAML error)."""


@contextmanager
def _hydra_config_dir(config_dir: Path) -> Iterator[None]:
    """Hydra's ``initialize_config_dir``, also when called inside a running Hydra app (whose state is restored)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    outer = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            yield
    finally:
        GlobalHydra.instance().hydra = outer


def _one_line(error: BaseException) -> str:
    text = str(error).split("Config search path:")[0]  # Hydra appends its search path; not the user's concern
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if lines else type(error).__name__


_STAGE_OVERRIDE = re.compile(r"^([+~]*)curriculum\.stages\.(\d+)\.(.+)$")
_REFERENCE = re.compile(r"^\$\{([\w.]+)\}$")


def _stage_overrides(config_name: str, overrides: list[str]) -> list[str]:
    """``overrides`` with ``curriculum.stages.N.<key>`` on a referenced stage retargeted to the referenced node."""
    from hydra import compose

    if not any(_STAGE_OVERRIDE.match(item) for item in overrides):
        return overrides
    composed = compose(config_name=config_name, overrides=[i for i in overrides if not _STAGE_OVERRIDE.match(i)])
    stages = (OmegaConf.to_container(composed, resolve=False).get("curriculum") or {}).get("stages")  # type: ignore[union-attr]
    return [_retarget(item, stages if isinstance(stages, list) else []) for item in overrides]


def _retarget(item: str, stages: list[Any]) -> str:
    match = _STAGE_OVERRIDE.match(item)
    if match is None:
        return item
    prefix, index, key = match.group(1), int(match.group(2)), match.group(3)
    reference = _REFERENCE.match(stages[index]) if index < len(stages) and isinstance(stages[index], str) else None
    return f"{prefix}{reference.group(1)}.{key}" if reference else item


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> DictConfig:
    """Compose the config file at ``path`` with Hydra-style ``overrides``; raises :class:`ConfigError`."""
    import yaml
    from hydra import compose
    from hydra.errors import HydraException

    config_path = Path(path).expanduser().absolute()
    if not config_path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if config_path.suffix != ".yaml":
        raise ConfigError(f"{path}: a config file must end in .yaml (Hydra finds configs by that suffix)")
    try:
        with _hydra_config_dir(config_path.parent):
            return compose(config_name=config_path.stem, overrides=_stage_overrides(config_path.stem, list(overrides)))
    except (HydraException, OmegaConfBaseException, yaml.YAMLError, ValueError) as err:
        raise ConfigError(f"{path}: {_one_line(err)}") from err
