"""``vlmcc train --config recipes/config.yaml backend=easyr1 ...``: a composed recipe run by the EasyR1 entry point,
in this process. Importing this module needs no EasyR1 (``vlmcc train`` imports it first).
"""

from __future__ import annotations

import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.launch import LaunchError

#: Model families the EasyR1 backend trains: EasyR1's own (verl/models/monkey_patch.py, FSDPWorker) and InternVL3/3.5
#: (the -hf checkpoints) through the fixes our worker applies at run time (internvl.py).
SUPPORTED_FAMILIES = ("qwen2_5_vl", "qwen3_vl", "internvl")
_ENV_MISSING = re.compile(r"Environment variable '([^']+)' not found")


def _plain(node: Any, key: str) -> Any:
    try:
        return OmegaConf.to_container(node, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        message = str(error).splitlines()[0]
        env = _ENV_MISSING.search(message)
        if env:
            message = f"environment variable {env.group(1)} is not set"
        full_key = getattr(error, "full_key", None) or key
        raise LaunchError(f"backend 'easyr1': `{full_key}`: {message}") from None


def easyr1_node(config: DictConfig) -> dict[str, Any]:
    """The entry point's configuration (a plain mapping) of a composed recipe."""
    from vlm_capcurriculum.curriculum import SpecError, parse_curriculum

    backend = config.get("backend")
    if backend is None or backend.get("easyr1") is None:
        raise LaunchError("backend 'easyr1': the recipe has no backend.easyr1 section (recipes/backend/easyr1.yaml)")
    family = OmegaConf.select(config, "model.family", default=None)
    if family is not None and family not in SUPPORTED_FAMILIES:
        raise LaunchError(
            f"backend 'easyr1': model family {family!r} ({OmegaConf.select(config, 'model.name')}) is not supported: "
            f"the EasyR1 backend trains {', '.join(SUPPORTED_FAMILIES)} vision-language models (and text models)"
        )
    if family == "internvl":
        from .internvl import InternVLUnsupportedError, check_ulysses

        try:
            check_ulysses(int(OmegaConf.select(backend.easyr1, "worker.actor.ulysses_size", default=1) or 1))
        except InternVLUnsupportedError as error:
            raise LaunchError(f"backend 'easyr1': {error}") from None
    try:
        parse_curriculum(config.get("curriculum"))  # errors name the recipe key (and a missing env variable)
    except SpecError as error:
        raise LaunchError(f"backend 'easyr1': {error}") from None
    native: dict[str, Any] = _plain(backend.easyr1, "backend.easyr1")
    curriculum = _plain(config.curriculum, "curriculum")
    curriculum["execution"] = str(backend.get("execution", "single"))
    native["curriculum"] = curriculum
    val_files = OmegaConf.select(config, "data.val_files", default=None)
    if val_files is not None:
        entries = _plain(val_files, "data.val_files") if not isinstance(val_files, str) else [val_files]
        entries = entries if isinstance(entries, list) else [entries]
        if len(entries) != 1:
            raise LaunchError(
                f"backend 'easyr1': data.val_files has {len(entries)} entries; EasyR1 validates on one source "
                "(one file or `name@split`)"
            )
        native.setdefault("data", {})["val_files"] = str(entries[0])
    return native


def launch(config: DictConfig, *, dry_run: bool) -> int:
    """The :class:`vlm_capcurriculum.launch.Launcher` of the EasyR1 backend."""
    from .installed import EasyR1VersionError

    try:
        from .config import dotted_keys, run_config_from_node, schema_node
    except EasyR1VersionError as error:
        raise LaunchError(f"backend 'easyr1': {error}") from None
    from .main import run_config

    native = easyr1_node(config)

    try:
        user = OmegaConf.create(native)
        node = OmegaConf.merge(schema_node(), user)
        run = run_config_from_node(node, frozenset(dotted_keys(user)), source="recipe (backend=easyr1)")
        return run_config(run, dry_run_only=dry_run)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None)
        raise LaunchError(f"backend 'easyr1': `backend.easyr1.{key}`: {str(error).splitlines()[0]}") from None
    except ConfigError as error:
        raise LaunchError(f"backend 'easyr1': {error}") from None
