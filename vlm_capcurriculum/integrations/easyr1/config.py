"""EasyR1's whole configuration plus our ``curriculum:`` block: loaded as ``verl.trainer.main`` loads it (unknown keys
still fail), validated by the curriculum core, checked against the plan and changed by it. ``curriculum.execution``
is ours, not the core's: ``single`` (all stages in one EasyR1 run, the default) or ``chained`` (chained.py).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import (
    Mode,
    Operation,
    Plan,
    SpecError,
    UnsupportedOverrideError,
    VisionTower,
    parse_curriculum,
    required_operations,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.spec import CurriculumSpec
from vlm_capcurriculum.prompts import PromptNotFoundError, resolve_prompt

from .installed import require_easyr1
from .layout import DEFAULT_REWARD_FUNCTION, resolve_function_path

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
    requested = {path: reduce(getattr, path, result) for path in _PATH_FIELDS}
    result.deep_post_init()
    for path, value in requested.items():
        if value is not None and reduce(getattr, path, result) is None:
            raise ConfigError(f"`{'.'.join(path)}`: {value} does not exist (EasyR1 would silently ignore it)")
    return result


EXECUTIONS = ("single", "chained")


@dataclass(frozen=True)
class RunConfig:
    """A validated run. ``node`` is the merged config before ``to_object`` (chained mode writes each stage's config from
    it: EasyR1's ``post_init`` rewrites some fields in ways that do not survive a second pass); ``explicit`` holds the
    dotted keys the user set."""

    config: CurriculumPPOConfig
    spec: CurriculumSpec
    execution: str
    node: DictConfig
    explicit: frozenset[str]
    source: str


def run_config_from_node(node: DictConfig, explicit: frozenset[str], source: str) -> RunConfig:
    """Validate the curriculum block of ``node`` with the core, then build EasyR1's config."""
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
    try:  # our reward by default; the reward and prompt files found from any directory
        reward = node.worker.reward.reward_function
        node.worker.reward.reward_function = resolve_function_path(
            DEFAULT_REWARD_FUNCTION if reward is None else str(reward), what="worker.reward.reward_function"
        )
        if node.data.format_prompt is not None:
            node.data.format_prompt = str(resolve_prompt(str(node.data.format_prompt)))
    except PromptNotFoundError as error:
        raise ConfigError(f"{source}: data.format_prompt: {error}") from None
    except FileNotFoundError as error:
        raise ConfigError(f"{source}: {error}") from None
    core = copy.deepcopy(node)  # the core's spec does not know `execution`; interpolations still see the whole config
    with open_dict(core):
        core.curriculum.pop("execution", None)
    try:
        spec = parse_curriculum(core.curriculum)
    except SpecError as error:
        raise ConfigError(f"{source}: {error}") from None
    return RunConfig(to_config(node), spec, execution, node, explicit, source)


def load_run_config(argv: Sequence[str]) -> RunConfig:
    """The entry point's config: EasyR1's config plus a validated ``curriculum:`` block."""
    node, explicit = compose(argv)
    config_files = [arg.split("=", 1)[1] for arg in argv if arg.startswith("config=")]
    source = config_files[-1] if config_files else "command line"
    return run_config_from_node(node, explicit, source)


# --- plan-time decisions: what the engine supports, what EasyR1's config must say, what we refuse (before Ray) ---
#: Operations a single EasyR1 run can never change mid-run, and why (``supported_operations`` leaves them out).
NEVER_MID_RUN: dict[Operation, str] = {
    Operation.rollout_n: (
        "EasyR1's workers fold worker.rollout.n into their batch sizes once, at start (FSDPWorker._init_dist_mesh)"
    ),
    Operation.rollout_temperature: (
        "EasyR1 fixes worker.rollout.temperature at start in both vLLM's sampling parameters and the actor's "
        "log-probability temperature"
    ),
}
CHAINED_HINT = "per-stage values of these work with curriculum.execution=chained (one EasyR1 run per stage)"


def unsupported_operations(config: CurriculumPPOConfig) -> dict[Operation, str]:
    """Operations this EasyR1 config cannot change at a stage boundary of one run, with the reason."""
    out = dict(NEVER_MID_RUN)
    lora = config.worker.actor.model.lora.rank > 0
    if config.algorithm.disable_kl:
        out[Operation.kl_coef] = "algorithm.disable_kl=true: the run has no KL term"
        out[Operation.refresh_reference] = "algorithm.disable_kl=true: the run has no reference model"
    elif not config.algorithm.use_kl_loss and config.algorithm.kl_type != "fixed":
        out[Operation.kl_coef] = (
            f"algorithm.kl_type={config.algorithm.kl_type}: EasyR1's adaptive KL controller sets the coefficient itself"
        )
    optim = config.worker.actor.optim
    if optim.lr_scheduler_type != "constant" or optim.lr_warmup_ratio > 0 or optim.lr_warmup_steps:
        out[Operation.lr_warmup] = (
            "a stage's warm-up replaces EasyR1's LR schedule, so it needs the constant one without a warm-up of its "
            f"own (configured: {optim.lr_scheduler_type}, lr_warmup_ratio {optim.lr_warmup_ratio}, lr_warmup_steps "
            f"{optim.lr_warmup_steps}): set worker.actor.optim.lr_scheduler_type=constant and the warm-up to 0"
        )
    if lora:
        out.setdefault(
            Operation.refresh_reference,
            "LoRA (worker.actor.model.lora.rank > 0): the reference is the actor with its adapters disabled",
        )
        out[Operation.vision_tower] = "LoRA (worker.actor.model.lora.rank > 0): the vision gate needs full fine-tuning"
    return out


def supported_operations(config: CurriculumPPOConfig) -> frozenset[Operation]:
    """What :class:`~vlm_capcurriculum.integrations.easyr1.engine.EasyR1Engine` can do for this config."""
    return frozenset(Operation) - frozenset(unsupported_operations(config))


def check_plan(run: RunConfig, plan: Plan) -> None:
    """Raise :class:`ConfigError` naming every stage override this run cannot honour, with EasyR1's reason."""
    config = run.config
    unsupported = unsupported_operations(config)
    if run.execution == "chained":  # each stage is its own run: every knob is a native start-up setting there
        unsupported = {op: why for op, why in unsupported.items() if op is Operation.kl_coef}
    try:
        validate_plan_for_engine(plan, frozenset(Operation) - frozenset(unsupported), engine_name="EasyR1")
    except UnsupportedOverrideError as error:
        needed = sorted(required_operations(plan) & set(unsupported), key=lambda op: op.value)
        reasons = "; ".join(f"{op.value}: {unsupported[op]}" for op in needed)
        hint = f" ({CHAINED_HINT})" if set(needed) & set(NEVER_MID_RUN) else ""
        raise ConfigError(f"{run.source}: {error}. Why: {reasons}{hint}") from None


def check_config(run: RunConfig) -> list[str]:
    """Refuse EasyR1 settings that contradict a curriculum; returns notes about settings the curriculum replaces."""
    config, explicit, source = run.config, run.explicit, run.source
    if config.algorithm.online_filtering:
        raise ConfigError(
            f"{source}: `algorithm.online_filtering=true` is not supported with a curriculum: EasyR1 then draws "
            "several batches per step (RayPPOTrainer._make_batch_data), so data stages and training steps drift apart"
        )
    if config.data.mini_rollout_batch_size is not None:
        raise ConfigError(
            f"{source}: `data.mini_rollout_batch_size` is not supported with a curriculum: EasyR1 then assembles one "
            "step from several loader batches; remove it (the curriculum's batch_size is the step's prompt count)"
        )
    if "data.train_files" in explicit and config.data.train_files:
        raise ConfigError(
            f"{source}: `data.train_files` is set, but the curriculum's stages name the training data "
            "(curriculum.stages[*].train_files); remove data.train_files"
        )
    batch = run.spec.batch_size
    if "data.rollout_batch_size" in explicit and config.data.rollout_batch_size != batch:
        raise ConfigError(
            f"{source}: `data.rollout_batch_size={config.data.rollout_batch_size}` contradicts "
            f"`curriculum.batch_size={batch}` (prompts per step); set one of them, or both to the same value"
        )
    if run.execution == "chained" and run.spec.mode is not Mode.staged:
        raise ConfigError(
            f"{source}: `curriculum.execution=chained` runs the stages of a staged curriculum one after another; "
            f"mode {run.spec.mode.value} trains one phase: use execution=single"
        )
    notes = []
    defaults = {"data": type(config.data)(), "trainer": type(config.trainer)()}
    for key, replacement in (
        ("data.shuffle", "curriculum.order"),
        ("data.seed", "curriculum.seed"),
        ("trainer.total_epochs", "the stages' epochs"),
    ):
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        if key in explicit and value != getattr(defaults[section], name):
            notes.append(f"{key}={value} is not used: {replacement} decides (the curriculum sampler orders the data)")
    optim = config.worker.actor.optim
    if (optim.lr_warmup_ratio > 0 or optim.lr_warmup_steps) and run.execution == "single":
        notes.append(
            "the LR warm-up happens once, at the start of the run (reset_optimizer keeps the schedule's position); "
            "curriculum.execution=chained warms up every stage"
        )
    return notes


def apply_plan(run: RunConfig, plan: Plan) -> str:
    """Write the plan's consequences into EasyR1's config (before the trainer is built); returns how the vision tower
    is handled: ``trainable`` or ``frozen`` in every stage (EasyR1's own freeze, as the paper's merged baseline), or
    ``per_stage`` (the worker's VisionTowerGate)."""
    config = run.config
    if "trainer.max_steps" in run.explicit and config.trainer.max_steps not in (None, plan.total_steps):
        raise ConfigError(
            f"{run.source}: `trainer.max_steps={config.trainer.max_steps}` contradicts the plan's "
            f"{plan.total_steps} steps; remove it (the curriculum sets it)"
        )
    # RayPPOTrainer.__init__ turns max_steps into training_steps: the LR schedule's horizon and the progress bar.
    config.trainer.max_steps = plan.total_steps
    config.data.rollout_batch_size = plan.batch_size
    base = VisionTower.frozen if config.worker.actor.model.freeze_vision_tower else VisionTower.trainable
    states = {stage.state.vision_tower or base for stage in plan.stages}  # a stage's None: the config's value
    if states == {VisionTower.frozen}:
        config.worker.actor.model.freeze_vision_tower = True
        return "frozen"
    if states == {VisionTower.trainable}:
        return "trainable"
    if config.worker.actor.model.freeze_vision_tower:
        raise ConfigError(
            "`worker.actor.model.freeze_vision_tower=true` freezes the tower for the whole run (EasyR1 drops it "
            "from the optimizer before FSDP wrapping), but this curriculum changes it between stages: set it to "
            "false and let the stages decide."
        )
    # our freeze (torch_ops.VisionTowerGate) needs the optimizer to see the tower's own parameters, not FSDP flat ones
    config.worker.actor.fsdp.use_orig_params = True
    return "per_stage"
