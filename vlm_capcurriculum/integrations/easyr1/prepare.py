"""Plan-time decisions for an EasyR1 run: what the engine supports, what EasyR1's config must say, what we refuse.

Everything here runs on the driver before Ray starts (and in ``--dry-run``), so a recipe EasyR1 cannot honour
fails before any GPU time is spent. It needs EasyR1's config object but imports no trainer or worker.
"""

from __future__ import annotations

from enum import Enum

from vlm_capcurriculum.curriculum import (
    Mode,
    Operation,
    Plan,
    UnsupportedOverrideError,
    VisionTower,
    required_operations,
    validate_plan_for_engine,
)

from .config import ConfigError, CurriculumPPOConfig, RunConfig, enable_runtime_vision_toggle

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


class VisionMode(str, Enum):
    """How the vision tower is handled for the whole run."""

    trainable = "trainable"  # trainable in every stage: nothing to do
    frozen = "frozen"  # frozen in every stage: EasyR1's own freeze_vision_tower (the paper's merged baseline)
    per_stage = "per_stage"  # changes between stages: the worker's VisionTowerGate, use_orig_params=True


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


def vision_mode(config: CurriculumPPOConfig, plan: Plan) -> VisionMode:
    """Trainable throughout, frozen throughout, or changing between stages (a stage's None = the config's value)."""
    base = VisionTower.frozen if config.worker.actor.model.freeze_vision_tower else VisionTower.trainable
    states = {stage.state.vision_tower or base for stage in plan.stages}
    if states == {VisionTower.frozen}:
        return VisionMode.frozen
    if states == {VisionTower.trainable}:
        return VisionMode.trainable
    return VisionMode.per_stage


def apply_plan(run: RunConfig, plan: Plan) -> VisionMode:
    """Write the plan's consequences into EasyR1's config (before the trainer is built)."""
    config = run.config
    if "trainer.max_steps" in run.explicit and config.trainer.max_steps not in (None, plan.total_steps):
        raise ConfigError(
            f"{run.source}: `trainer.max_steps={config.trainer.max_steps}` contradicts the plan's "
            f"{plan.total_steps} steps; remove it (the curriculum sets it)"
        )
    # RayPPOTrainer.__init__ turns max_steps into training_steps: the LR schedule's horizon and the progress bar.
    config.trainer.max_steps = plan.total_steps
    config.data.rollout_batch_size = plan.batch_size
    mode = vision_mode(config, plan)
    if mode is VisionMode.frozen:
        config.worker.actor.model.freeze_vision_tower = True  # EasyR1's own freeze, as the paper's merged baseline
    elif mode is VisionMode.per_stage:
        enable_runtime_vision_toggle(config)
    return mode
