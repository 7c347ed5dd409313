"""EasyR1's whole configuration plus our ``curriculum:`` block, loaded the way ``verl.trainer.main`` loads it.

``verl.trainer.main.main`` does: ``OmegaConf.from_cli()``; ``OmegaConf.structured(PPOConfig())``; if the command
line has ``config=FILE``, pop it and merge the YAML file; merge the remaining ``key=value`` overrides;
``OmegaConf.to_object``; ``deep_post_init()``. :func:`load_config` does the same with
:class:`CurriculumPPOConfig`, so every EasyR1 config file and override works unchanged and unknown keys still
fail. Errors say whether the file or the command line was at fault and name the key.

The ``curriculum`` field stays a plain mapping in the dataclass (EasyR1's ``to_dict``/logging see it as such);
:func:`load_run_config` validates it with the curriculum core (``parse_curriculum``) before anything else, so
its errors name the key (``curriculum.stages[1].epochs``). One key is ours rather than the core's:
``curriculum.execution`` (``single``: all stages in one EasyR1 run, the default; ``chained``: one EasyR1 run per
stage, see chained.py). Importing this module checks the installed EasyR1 (installed.py), then imports its config.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum.spec import CurriculumSpec

from .installed import require_easyr1

require_easyr1()  # the one version check, before the first EasyR1 import (and EasyR1's config without vLLM)
from verl.trainer.config import PPOConfig  # noqa: E402


@dataclass
class CurriculumPPOConfig(PPOConfig):  # type: ignore[misc, valid-type]
    """EasyR1's ``PPOConfig`` with a ``curriculum`` block (a mapping here; ``load_run_config`` validates it)."""

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


def schema_node() -> Any:
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


def compose(argv: Sequence[str]) -> tuple[DictConfig, frozenset[str]]:
    """The merged (schema + file + command line) config node before ``to_object``, and the dotted keys the file
    or the command line set explicitly (to tell a user's value from EasyR1's default)."""
    try:
        cli = OmegaConf.from_cli(list(argv))
    except OmegaConfBaseException as error:
        raise ConfigError(f"command line: cannot parse overrides {list(argv)}: {error}") from error
    config = schema_node()
    explicit: set[str] = set()
    if "config" in cli:
        path = Path(str(cli.pop("config")))
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            file_config = OmegaConf.load(path)
        except Exception as error:  # YAML syntax errors come from yaml, not OmegaConf
            raise ConfigError(f"{path}: cannot parse YAML: {error}") from error
        explicit |= dotted_keys(file_config)
        try:
            config = OmegaConf.merge(config, file_config)
        except OmegaConfBaseException as error:
            raise ConfigError(f"{path}: {_describe(error)}") from error
    explicit |= dotted_keys(cli)
    try:
        config = OmegaConf.merge(config, cli)
    except OmegaConfBaseException as error:
        raise ConfigError(f"command line: {_describe(error)}") from error
    return config, frozenset(explicit)


def dotted_keys(node: Any) -> set[str]:
    """Every key path of a config node (interpolations left unresolved), e.g. ``{"data.seed", "data"}``."""

    def walk(value: Any, prefix: str) -> set[str]:
        keys: set[str] = set()
        if isinstance(value, dict):
            for key, child in value.items():
                keys |= {f"{prefix}{key}"} | walk(child, f"{prefix}{key}.")
        return keys

    return walk(OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else node, "")


def to_config(node: DictConfig) -> CurriculumPPOConfig:
    """``OmegaConf.to_object`` + ``deep_post_init`` (as ``verl.trainer.main``), with paths checked."""
    try:
        result: CurriculumPPOConfig = OmegaConf.to_object(node)  # type: ignore[assignment]
    except OmegaConfBaseException as error:
        raise ConfigError(_describe(error)) from error
    requested = {path: _get(result, path) for path in _PATH_FIELDS}
    result.deep_post_init()
    for path, value in requested.items():
        if value is not None and _get(result, path) is None:
            raise ConfigError(f"`{'.'.join(path)}`: {value} does not exist (EasyR1 would silently ignore it)")
    return result


def load_config(argv: Sequence[str]) -> CurriculumPPOConfig:
    """Build the config from ``config=FILE.yaml`` and ``key=value`` arguments (as ``verl.trainer.main``)."""
    node, _ = compose(argv)
    return to_config(node)


EXECUTIONS = ("single", "chained")


@dataclass(frozen=True)
class RunConfig:
    """A validated run: EasyR1's config, the curriculum spec, and how to execute it.

    ``node`` is the merged config before ``to_object`` (chained mode writes each stage's config from it: EasyR1's
    ``post_init`` rewrites some fields in ways that do not survive a second pass). ``explicit`` holds the dotted
    keys the user set.
    """

    config: CurriculumPPOConfig
    spec: CurriculumSpec
    execution: str
    node: DictConfig
    explicit: frozenset[str]
    source: str


def run_config_from_node(node: DictConfig, explicit: frozenset[str], source: str) -> RunConfig:
    """Validate the curriculum block of ``node`` with the core, then build EasyR1's config."""
    from vlm_capcurriculum.curriculum import SpecError, parse_curriculum

    block = node.get("curriculum")
    if not block:
        raise ConfigError(
            f"{source}: `curriculum`: missing; this entry point trains a capability curriculum: add a curriculum: "
            "block (recipes/README.md) or run EasyR1's own `python -m verl.trainer.main` for a plain run"
        )
    if not isinstance(block, DictConfig):
        raise ConfigError(f"{source}: `curriculum`: must be a mapping, got {block!r}")
    execution = str(block.get("execution", "single"))
    if execution not in EXECUTIONS:
        raise ConfigError(f"{source}: `curriculum.execution`: {execution!r}; expected one of {', '.join(EXECUTIONS)}")
    _resolve_repo_files(node, source)
    core = copy.deepcopy(node)  # the core's spec does not know `execution`; interpolations still see the whole config
    with open_dict(core):
        core.curriculum.pop("execution", None)
    try:
        spec = parse_curriculum(core.curriculum)
    except SpecError as error:
        raise ConfigError(f"{source}: {error}") from None
    return RunConfig(to_config(node), spec, execution, node, explicit, source)


def _resolve_repo_files(node: DictConfig, source: str) -> None:
    """Our reward by default; the reward and prompt files found from any directory (layout.py)."""
    from vlm_capcurriculum.prompts import PromptNotFoundError, resolve_prompt

    from .layout import default_reward_function, resolve_function_path

    try:
        reward = node.worker.reward.reward_function
        node.worker.reward.reward_function = (
            default_reward_function()
            if reward is None
            else resolve_function_path(str(reward), what="worker.reward.reward_function")
        )
        if node.data.format_prompt is not None:
            node.data.format_prompt = str(resolve_prompt(str(node.data.format_prompt)))
    except PromptNotFoundError as error:
        raise ConfigError(f"{source}: data.format_prompt: {error}") from None
    except FileNotFoundError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_run_config(argv: Sequence[str]) -> RunConfig:
    """The entry point's config: EasyR1's config plus a validated ``curriculum:`` block."""
    node, explicit = compose(argv)
    config_files = [arg.split("=", 1)[1] for arg in argv if arg.startswith("config=")]
    source = config_files[-1] if config_files else "command line"
    return run_config_from_node(node, explicit, source)


def curriculum_block(config: CurriculumPPOConfig) -> dict[str, Any]:
    """The raw ``curriculum`` mapping as EasyR1's config holds it (``execution`` included)."""
    return dict(config.curriculum)


def enable_runtime_vision_toggle(config: CurriculumPPOConfig) -> None:
    """Prepare the actor for freezing/unfreezing its vision tower at stage boundaries.

    EasyR1's ``worker.actor.model.freeze_vision_tower`` removes the tower from the optimizer before FSDP
    wrapping, so it can never be unfrozen; a run whose stages differ must start with it trainable. Our
    freeze (torch_ops.VisionTowerGate) needs ``use_orig_params=True`` so that the optimizer sees the tower's
    own parameters instead of FSDP flat parameters that mix them with text-model parameters.
    """
    if config.worker.actor.model.freeze_vision_tower:
        raise ConfigError(
            "`worker.actor.model.freeze_vision_tower=true` freezes the tower for the whole run (EasyR1 drops it "
            "from the optimizer before FSDP wrapping), but this curriculum changes it between stages: set it to "
            "false and let the stages decide."
        )
    config.worker.actor.fsdp.use_orig_params = True
