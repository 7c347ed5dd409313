"""EasyR1's whole configuration plus our ``curriculum:`` block, loaded the way ``verl.trainer.main`` loads it.

``verl.trainer.main.main`` does: ``OmegaConf.from_cli()``; ``OmegaConf.structured(PPOConfig())``; if the command
line has ``config=FILE``, pop it and merge the YAML file; merge the remaining ``key=value`` overrides;
``OmegaConf.to_object``; ``deep_post_init()``. :func:`load_config` does the same with
:class:`CurriculumPPOConfig`, so every EasyR1 config file and override works unchanged and unknown keys still
fail. Errors say whether the file or the command line was at fault and name the key.

The ``curriculum`` block is kept opaque (a mapping) until the curriculum core's spec dataclass replaces it.
Importing this module imports EasyR1's config (without vLLM where vLLM is absent: see vllm_free.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .private_api import resolve

PPOConfig = resolve("PPOConfig")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the source and the key."""


@dataclass
class CurriculumPPOConfig(PPOConfig):  # type: ignore[misc, valid-type]
    """EasyR1's ``PPOConfig`` with a ``curriculum`` block (opaque until the core spec lands)."""

    curriculum: dict[str, Any] = field(default_factory=dict)


# Fields whose post_init turns a path into an absolute path, or silently into None when the file is missing
# (verl.utils.py_functional.get_abs_path only prints "... not found."). We turn the latter into an error.
_PATH_FIELDS = (
    ("data", "image_dir"),
    ("data", "format_prompt"),
    ("data", "override_chat_template"),
    ("trainer", "load_checkpoint_path"),
    ("worker", "reward", "reward_function"),
)


def _get(obj: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _describe(error: OmegaConfBaseException) -> str:
    key = getattr(error, "full_key", None)
    message = str(error).splitlines()[0]
    return f"`{key}`: {message}" if key else message


def _schema() -> Any:
    try:
        return OmegaConf.structured(CurriculumPPOConfig())
    except OmegaConfBaseException as error:
        import omegaconf

        # EasyR1 @ b44b311 declares `TrainerConfig.logger: Tuple[str] = ("console", "wandb")`; omegaconf 2.4
        # validates tuple lengths and rejects it, so EasyR1's own `verl.trainer.main` fails the same way.
        raise ConfigError(
            f"EasyR1's PPOConfig cannot be built with omegaconf {omegaconf.__version__} ({_describe(error)}); "
            "EasyR1 @ b44b311 needs omegaconf<2.4: `pip install 'omegaconf>=2.3,<2.4'`"
        ) from error


def load_config(argv: Sequence[str]) -> CurriculumPPOConfig:
    """Build the config from ``config=FILE.yaml`` and ``key=value`` arguments (as ``verl.trainer.main``)."""
    try:
        cli = OmegaConf.from_cli(list(argv))
    except OmegaConfBaseException as error:
        raise ConfigError(f"command line: cannot parse overrides {list(argv)}: {error}") from error
    config = _schema()
    if "config" in cli:
        path = Path(str(cli.pop("config")))
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            file_config = OmegaConf.load(path)
        except Exception as error:  # YAML syntax errors come from yaml, not OmegaConf
            raise ConfigError(f"{path}: cannot parse YAML: {error}") from error
        try:
            config = OmegaConf.merge(config, file_config)
        except OmegaConfBaseException as error:
            raise ConfigError(f"{path}: {_describe(error)}") from error
    try:
        config = OmegaConf.merge(config, cli)
    except OmegaConfBaseException as error:
        raise ConfigError(f"command line: {_describe(error)}") from error
    try:
        result: CurriculumPPOConfig = OmegaConf.to_object(config)  # type: ignore[assignment]
    except OmegaConfBaseException as error:
        raise ConfigError(_describe(error)) from error
    requested = {path: _get(result, path) for path in _PATH_FIELDS}
    result.deep_post_init()
    for path, value in requested.items():
        if value is not None and _get(result, path) is None:
            raise ConfigError(f"`{'.'.join(path)}`: {value} does not exist (EasyR1 would silently ignore it)")
    return result


def curriculum_block(config: CurriculumPPOConfig) -> dict[str, Any]:
    """The raw ``curriculum`` mapping (to be replaced by the core's spec type)."""
    return dict(config.curriculum)


def enable_runtime_vision_toggle(config: CurriculumPPOConfig) -> None:
    """Prepare the actor for freezing/unfreezing its vision tower at stage boundaries.

    EasyR1's ``worker.actor.model.freeze_vision_tower`` removes the tower from the optimizer before FSDP
    wrapping, so it can never be unfrozen; a run whose stages differ must start with it trainable. Our
    freeze (engine_ops.VisionTowerGate) needs ``use_orig_params=True`` so that the optimizer sees the tower's
    own parameters instead of FSDP flat parameters that mix them with text-model parameters.
    """
    if config.worker.actor.model.freeze_vision_tower:
        raise ConfigError(
            "`worker.actor.model.freeze_vision_tower=true` freezes the tower for the whole run (EasyR1 drops it "
            "from the optimizer before FSDP wrapping), but this curriculum changes it between stages: set it to "
            "false and let the stages decide."
        )
    config.worker.actor.fsdp.use_orig_params = True
