"""Which curriculum stage overrides verl 0.9.1 can apply mid-run, decided from the config before any worker exists.

Anything verl cannot do is an error when the plan is checked (:func:`check_plan`), never a silent no-op at the stage
boundary. The reasons below are facts about verl 0.9.1's v1 trainer and engine workers (``docs/integrations/verl.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from vlm_capcurriculum.curriculum import (
    END_ACTIONS,
    OPERATION_OF_FIELD,
    START_ACTIONS,
    Operation,
    Plan,
    UnsupportedOverrideError,
    validate_plan_for_engine,
)
from vlm_capcurriculum.curriculum.overrides import FIELDS

from .planning import check_run_shape

ENGINE_NAME = "verl"

#: Strategies whose engine (``verl.workers.engine.fsdp.FSDPEngine``) our worker operations know.
FSDP_STRATEGIES = ("fsdp", "fsdp2")


@dataclass(frozen=True)
class OverrideSupport:
    """Whether an override is supported with this config, and how (or why not, and what to change)."""

    supported: bool
    detail: str


def _uses_lora(config: DictConfig) -> bool:
    model = config.actor_rollout_ref.model
    lora_rank = model.get("lora", {}).get("rank", 0) or 0
    if lora_rank <= 0:
        lora_rank = model.get("lora_rank", 0) or 0
    return lora_rank > 0 or model.get("lora_adapter_path") is not None


def override_support(config: DictConfig) -> dict[str, OverrideSupport]:
    """Every override's support under this composed verl config (one entry per field of the core's table)."""
    actor = config.actor_rollout_ref.actor
    strategy = actor.get("strategy")
    fsdp = strategy in FSDP_STRATEGIES
    not_fsdp = f"actor strategy {strategy!r}: the worker operations support only {', '.join(FSDP_STRATEGIES)}"
    use_orig_params = bool(actor.get("fsdp_config", {}).get("use_orig_params", False))
    has_reference = bool(actor.get("use_kl_loss", False) or config.algorithm.get("use_kl_in_reward", False))
    lora = _uses_lora(config)
    val_files = config.data.get("val_files")
    found: dict[str, OverrideSupport] = {}

    def add(name: str, supported: bool, detail: str) -> None:
        found[name] = OverrideSupport(supported, detail)

    if not fsdp:
        add("vision_tower", False, not_fsdp)
    elif strategy == "fsdp" and not use_orig_params:
        add(
            "vision_tower",
            False,
            "FSDP1 flat parameters mix vision and language weights: set actor_rollout_ref.actor.strategy=fsdp2 "
            "or actor_rollout_ref.actor.fsdp_config.use_orig_params=true",
        )
    else:
        add("vision_tower", True, "worker drops vision-tower gradients before clip and optimizer step")
    add("lr", fsdp, "worker sets LambdaLR base_lrs (checkpointed)" if fsdp else not_fsdp)
    optim = actor.get("optim", {})
    warmup = (optim.get("lr_warmup_steps") or 0) > 0 or (optim.get("lr_warmup_steps_ratio") or 0) > 0
    schedule = optim.get("lr_scheduler_type") or optim.get("warmup_style") or "constant"
    if not fsdp:
        add("lr_warmup_ratio", False, not_fsdp)
    elif schedule != "constant" or warmup:
        add(
            "lr_warmup_ratio",
            False,
            f"the per-stage warm-up replaces verl's schedule, so it needs the constant one without a warm-up of its "
            f"own (configured: {schedule}, lr_warmup_steps {optim.get('lr_warmup_steps')}, lr_warmup_steps_ratio "
            f"{optim.get('lr_warmup_steps_ratio')}): set actor_rollout_ref.actor.optim.lr_scheduler_type=constant and "
            "the warm-up to 0, or remove the stage's lr_warmup_ratio",
        )
    else:
        add("lr_warmup_ratio", True, "worker puts a stage warm-up factor into the LambdaLR (checkpointed)")
    if actor.get("use_kl_loss", False):
        add("kl_coef", True, "driver rebinds the actor loss (set_loss_fn) with a new kl_loss_coef")
    else:
        add(
            "kl_coef",
            False,
            "no reference model is built when actor_rollout_ref.actor.use_kl_loss=false, so KL cannot be switched "
            "on later: set use_kl_loss=true (kl_loss_coef may be 0 in stages without KL)",
        )
    for name in ("clip_ratio_low", "clip_ratio_high"):
        add(name, True, "driver rebinds the actor loss (set_loss_fn)")
    add("max_grad_norm", fsdp, "worker sets optimizer_config.clip_grad (read every step)" if fsdp else not_fsdp)
    if not fsdp:
        add("reset_optimizer", False, not_fsdp)
    elif warmup:
        # The curriculum core's contract: a reset restarts the LR warm-up, as a new chained run would. verl builds one
        # schedule for the whole run (warm-up steps = ratio x all steps) inside the engine; it is not restarted.
        add(
            "reset_optimizer",
            False,
            "with an LR warm-up (actor_rollout_ref.actor.optim.lr_warmup_steps / lr_warmup_steps_ratio) a reset must "
            "restart the warm-up, and verl's schedule is one warm-up over the whole run: set the warm-up to 0 (the "
            "paper's Qwen setting; a stage's own warm-up is the lr_warmup_ratio override) or switch reset_optimizer off",
        )
    else:
        add("reset_optimizer", True, "worker clears the optimizer state (Adam moments and step counts)")
    if not fsdp:
        add("refresh_reference", False, not_fsdp)
    elif not has_reference:
        add("refresh_reference", False, "no reference model: set actor_rollout_ref.actor.use_kl_loss=true")
    elif lora:
        add(
            "refresh_reference",
            False,
            "with LoRA verl's reference is the base model without the adapter inside the actor; it cannot be "
            "replaced by the current policy",
        )
    else:
        add("refresh_reference", True, "worker copies actor weights into the reference model (and saves them)")
    add(
        "save_checkpoint",
        fsdp,
        "driver saves a resumable checkpoint, worker exports huggingface/ weights" if fsdp else not_fsdp,
    )
    add(
        "validate",
        bool(val_files),
        "driver runs verl's validation after the step's weight sync" if val_files else "data.val_files is not set",
    )
    add(
        "rollout_temperature",
        False,
        "agent-loop workers keep their own copy of actor_rollout_ref.rollout (sampling params) and the trainer "
        "scales log-probs by the same value; it cannot change mid-run (a stage may repeat the configured value)",
    )
    add(
        "rollout_n",
        False,
        "rollout.n sizes mini-batches, batch balancing and advantage groups from a config fixed at start; it cannot "
        "change mid-run (a stage may repeat the configured value)",
    )
    add(
        "reward",
        False,
        "reward workers are long-lived Ray actors with reward.custom_reward_function.reward_kwargs bound at start",
    )
    return found


def check_overrides(config: DictConfig, overrides: Mapping[str, Any], *, where: str) -> None:
    """Raise :class:`UnsupportedOverrideError` naming every override in ``overrides`` (at ``where``, e.g.
    ``"stage 'perception'"``) that is unknown or unsupported by this verl config. Values that request nothing pass:
    a false flag, an empty reward block, the configured rollout temperature or n (fixed at start)."""
    support = override_support(config)
    rollout = config.actor_rollout_ref.rollout
    fixed = {"rollout_temperature": rollout.temperature, "rollout_n": rollout.n}
    problems = []
    for name, value in overrides.items():
        if name not in support:
            problems.append(f"{name}: unknown override (known: {', '.join(FIELDS)})")
        elif name in fixed:
            if value != fixed[name]:
                problems.append(f"{name}={value!r}: cannot change mid-run (configured {fixed[name]})")
        elif not support[name].supported and (value or name not in (*START_ACTIONS, *END_ACTIONS, "reward")):
            problems.append(f"{name}: not supported by verl here: {support[name].detail}")
    if problems:
        raise UnsupportedOverrideError([f"{where}: {problem}" for problem in problems], ENGINE_NAME)


def supported_operations(config: DictConfig) -> frozenset[Operation]:
    """The core's operations whose overrides are all supported: a stage that sets ``rollout_temperature``,
    ``rollout_n`` or ``reward`` at all (even to the configured value) fails the core's plan check."""
    support = override_support(config)
    unsupported = {OPERATION_OF_FIELD[name] for name, entry in support.items() if not entry.supported}
    return frozenset(set(OPERATION_OF_FIELD.values()) - unsupported)


def check_plan(plan: Plan, config: DictConfig) -> None:
    """The plan against this verl config (the launcher and the trainer both check): the run shape, verl's reason for
    each override it cannot apply, ``actor.freeze_vision_tower`` (honoured by our trainer mode), then the core's
    check against :func:`supported_operations`."""
    check_run_shape(plan, config)
    if config.actor_rollout_ref.actor.get("freeze_vision_tower", False):
        check_overrides(config, {"vision_tower": "frozen"}, where="actor_rollout_ref.actor.freeze_vision_tower=true")
    problems = []
    seen: set[tuple[str, str]] = set()
    for stage in plan.stages:
        fields = stage.state.set_fields()
        key = (stage.name, repr(sorted(fields.items())))
        if key in seen:  # stitched_replay repeats stages
            continue
        seen.add(key)
        try:
            check_overrides(config, fields, where=f"stage {stage.name!r} (steps {stage.start_step}-{stage.end_step})")
        except UnsupportedOverrideError as error:
            problems.extend(error.problems)
    if problems:
        raise UnsupportedOverrideError(problems, ENGINE_NAME)
    validate_plan_for_engine(plan, supported_operations(config), engine_name=ENGINE_NAME)
