"""From the composed recipe to ``GRPOConfig`` and the trainer's arguments.

``recipes/backend/trl.yaml`` maps the ``train.*`` keys onto ``backend.grpo`` (any other ``GRPOConfig`` field can be
added there); the batch layout keys (:data:`DERIVED_KEYS`) are derived here, as ``docs/integrations/trl.md`` says.
What TRL 1.16 lacks is applied by us or refused here before any model is loaded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from vlm_capcurriculum.curriculum import Plan
from vlm_capcurriculum.prompts import THINK_BOXED, PromptNotFoundError, read_prompt

from .rewards import REWARD_SETTINGS, reward_weights, unknown_reward_settings
from .sampler import updates_per_step

DERIVED_KEYS = frozenset(
    {
        "output_dir",
        "generation_batch_size",
        "steps_per_generation",
        "per_device_train_batch_size",
        "gradient_accumulation_steps",
        "max_steps",
        "num_train_epochs",
        "lr_scheduler_type",
        "warmup_steps",
        "warmup_ratio",
        "save_strategy",
        "save_steps",
        "reward_weights",
        "use_cpu",
        "bf16",
        "fp16",
        "shuffle_dataset",
    }
)


class TRLConfigError(ValueError):
    """A recipe the TRL backend cannot run as written; the message names the key."""


@dataclass(frozen=True)
class TRLSettings:
    """Everything the launcher needs besides the data: the real ``GRPOConfig`` and the trainer's own arguments."""

    grpo: Any  # trl.GRPOConfig
    output_dir: Path
    model_path: str
    dtype: str  # "bfloat16" | "float32"
    updates_per_step: int
    reward_kwargs: dict[str, Any]
    lr_warmup_ratio: float
    val_batch_size: int
    val_max_samples: int | None
    val_generation_kwargs: dict[str, float]
    resume: str  # "auto" | "never" | a checkpoint path
    format_prompt: str  # the Jinja template text
    tiny_seed: int
    tiny_warm_start_steps: int
    min_pixels: int | None = None
    max_pixels: int | None = None
    max_prompt_length: int | None = None  # tokens; longer training prompts are dropped before planning
    val_before_train: bool = False

    def describe(self) -> list[str]:
        """Lines telling how one curriculum step maps onto TRL (printed with the plan)."""
        g = self.grpo
        return [
            f"TRL: one curriculum step = one generation batch of {g.generation_batch_size} completions "
            f"({g.generation_batch_size // g.num_generations} prompts x {g.num_generations}), "
            f"{self.updates_per_step} optimizer step(s) of {g.per_device_train_batch_size} x "
            f"{g.gradient_accumulation_steps} completions; max_steps {g.max_steps}",
            f"TRL: model {self.model_path} ({self.dtype}, {'cpu' if g.use_cpu else 'accelerator'}), "
            f"beta {g.beta}, lr {g.learning_rate}, output {self.output_dir}",
        ]


def _container(node: Any) -> dict[str, Any]:
    return dict(OmegaConf.to_container(node, resolve=True)) if node is not None else {}  # type: ignore[arg-type]


def _device_and_dtype(device: str, dtype: str) -> tuple[bool, str, bool]:
    """(use_cpu, weight dtype, bf16 autocast) for ``backend.device`` / ``backend.dtype``. ``auto``: a GPU if torch
    sees one, with bf16 autocast and weights; on a CPU float32 and no autocast (CPU bf16 is several times slower)."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise TRLConfigError(f"backend.device: expected auto, cpu or cuda, got {device!r}")
    use_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    if not use_cpu and not torch.cuda.is_available():
        raise TRLConfigError("backend.device: cuda asked for, but torch sees no GPU")
    bf16 = not use_cpu and torch.cuda.is_bf16_supported()
    if dtype == "auto":
        dtype = "bfloat16" if bf16 else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise TRLConfigError(f"backend.dtype: expected auto, float32 or bfloat16, got {dtype!r}")
    return use_cpu, dtype, bf16


def build_settings(config: DictConfig, plan: Plan) -> TRLSettings:
    """Check the recipe against the plan and build the real ``GRPOConfig`` (no model is loaded)."""
    import trl
    from trl import GRPOConfig

    backend = config.backend
    train = config.train
    native = _container(backend.get("grpo"))
    clash = sorted(DERIVED_KEYS & set(native))
    if clash:
        raise TRLConfigError(
            f"backend.grpo.{clash[0]}: derived from the curriculum and train.* keys (see "
            "docs/integrations/trl.md); set those instead"
        )
    known = {field.name for field in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(native) - known)
    if unknown:
        raise TRLConfigError(f"backend.grpo.{unknown[0]}: not a GRPOConfig field (trl {trl.__version__})")
    if str(train.get("kl_penalty", "low_var_kl")) != "low_var_kl":
        raise TRLConfigError(
            f"train.kl_penalty: TRL's KL term is the k3 estimator (low_var_kl), not {train.kl_penalty!r}"
        )
    if not bool(train.get("use_kl_loss", True)):
        native["beta"] = 0.0
    if train.get("clip_ratio_dual") is not None:
        raise TRLConfigError(
            f"train.clip_ratio_dual={train.clip_ratio_dual}: TRL's GRPO loss has no dual clip (EasyR1/verl cap the "
            "ratio of negative-advantage tokens at this value); set train.clip_ratio_dual=null to run without it"
        )
    if str(train.get("adv_estimator", "grpo")) != "grpo":
        raise TRLConfigError(f"train.adv_estimator: the TRL backend runs GRPO, not {train.adv_estimator!r}")

    n = int(native.get("num_generations", train.rollout_n))
    prompts = plan.batch_size
    global_prompts = int(train.global_batch_size)
    micro = int(backend.micro_batch_size) if backend.get("micro_batch_size") is not None else global_prompts * n
    if prompts % global_prompts:
        raise TRLConfigError(
            f"train.global_batch_size {global_prompts} must divide the {prompts} prompts of a step "
            "(curriculum.batch_size / train.rollout_batch_size)"
        )
    if (global_prompts * n) % micro:
        raise TRLConfigError(
            f"backend.micro_batch_size {micro} must divide an update's {global_prompts} x {n} completions "
            "(train.global_batch_size x train.rollout_n)"
        )
    accumulation = global_prompts * n // micro
    num_iterations = int(native.get("num_iterations", 1))
    per_step = updates_per_step(
        prompts_per_step=prompts,
        num_generations=n,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        num_iterations=num_iterations,
    )
    save_every = int(backend.get("save_every", 0) or 0)
    use_cpu, dtype, bf16 = _device_and_dtype(str(backend.get("device", "auto")), str(backend.get("dtype", "auto")))
    reward_kwargs = _container(train.get("reward"))
    layers = [("train.reward", reward_kwargs)] + [
        (f"stage {stage.name!r} reward override", dict(stage.state.reward or {})) for stage in plan.stages
    ]
    for where, settings in layers:
        unknown = unknown_reward_settings(settings)
        if unknown:
            raise TRLConfigError(
                f"{where}: unknown reward setting {unknown[0]!r} (the rewards take {sorted(REWARD_SETTINGS)})"
            )
    format_weight = float(reward_kwargs.get("format_weight", 0.1))
    output_dir = Path(str(backend.output_dir)).expanduser().absolute()
    grpo = GRPOConfig(
        **native,
        output_dir=str(output_dir),
        generation_batch_size=prompts * n,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        max_steps=plan.total_steps * per_step,
        lr_scheduler_type="constant",
        save_strategy="steps",
        # Transformers saves every save_steps; stage ends add their own (the trainer sets should_save there).
        save_steps=save_every * per_step if save_every > 0 else plan.total_steps * per_step,
        reward_weights=reward_weights(format_weight),
        use_cpu=use_cpu,
        bf16=bf16,
        shuffle_dataset=False,
    )
    try:
        format_prompt = read_prompt(str(backend.get("format_prompt") or THINK_BOXED))
    except PromptNotFoundError as err:
        raise TRLConfigError(f"backend.format_prompt: {err}") from None
    val = _container(backend.get("validation"))
    max_samples = val.get("max_samples")
    return TRLSettings(
        grpo=grpo,
        output_dir=output_dir,
        model_path=str(backend.get("model_path") or config.model.path),
        dtype=dtype,
        updates_per_step=per_step,
        reward_kwargs=reward_kwargs,
        lr_warmup_ratio=float(train.get("lr_warmup_ratio", 0.0)),
        val_batch_size=int(val.get("batch_size", 16)),
        val_max_samples=None if max_samples is None else int(max_samples),
        val_generation_kwargs={"temperature": float(train.val_temperature), "top_p": float(train.val_top_p)},
        resume=str(backend.get("resume", "auto")),
        format_prompt=format_prompt,
        tiny_seed=int(config.model.get("tiny_seed", 0) or 0),
        tiny_warm_start_steps=int(config.model.get("tiny_warm_start_steps", 0) or 0),
        min_pixels=_optional_int(train, "min_pixels"),
        max_pixels=_optional_int(train, "max_pixels"),
        max_prompt_length=_optional_int(train, "max_prompt_length"),
        val_before_train=bool(val.get("before_train", False)),
    )


def _optional_int(node: Any, key: str) -> int | None:
    value = node.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TRLConfigError(f"train.{key}: expected a positive integer or null, got {value!r}")
    return value
