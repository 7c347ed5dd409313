"""InternVL3 / InternVL3.5 on verl 0.9.1: what the launcher checks at plan time, and what a run still lacks.

verl loads the transformers-native checkpoints (``InternVLForConditionalGeneration``: ``OpenGVLab/InternVL3-8B-hf``,
``OpenGVLab/InternVL3_5-8B-HF``, the ids the reference scripts use) through ``AutoModelForImageTextToText`` without
remote code, so a recipe with ``model.family=internvl`` composes, plans and passes ``--dry-run`` like a Qwen one.
Refused at plan time, with the reason:

* Ulysses sequence parallelism > 1: verl's vision-language Ulysses patches (``verl/models/transformers/
  monkey_patch.py``, by ``model_type``: Qwen2/2.5/3-VL, GLM-4V, Kimi-VL, Qwen3.5) do not cover ``internvl``;
* the remote-code checkpoints (``OpenGVLab/InternVL3-8B`` without ``-hf``): their ``InternVLChatModel`` is a different
  architecture that verl and vLLM's native path do not load as ``InternVLForConditionalGeneration``.

A training run (not ``--dry-run``) is refused until the runtime fixes of issue #15 are applied by the plugin
(:data:`RUNTIME_GAPS`, each a fact about verl 0.9.1 read from its sources).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

FAMILY = "internvl"

#: Remote-code InternVL checkpoints and their transformers-native counterparts.
NATIVE_CHECKPOINTS: dict[str, str] = {
    "OpenGVLab/InternVL3-8B": "OpenGVLab/InternVL3-8B-hf",
    "OpenGVLab/InternVL3_5-8B": "OpenGVLab/InternVL3_5-8B-HF",
}

#: What verl 0.9.1 does not yet do for InternVL (issue #15), so a training run would fail or be wrong.
RUNTIME_GAPS: tuple[str, ...] = (
    "verl.utils.tokenizer.hf_processor returns None for InternVLProcessor (only a warning), so images are never "
    "processed",
    "the agent loop's _compute_multi_modal_inputs decodes the prompt with skip_special_tokens=True, dropping "
    "<IMG_CONTEXT>, and the processor then rejects the image-token count",
    "text-only micro-batches skip InternVL's vision tower (it runs only with pixel_values), so FSDP ranks issue "
    "different collectives (no dummy vision forward as verl has for Qwen)",
    "data.mm_processor_kwargs min_pixels/max_pixels are ignored by InternVL's processor (it tiles 448-pixel crops), "
    "so the merged baseline's max_pixels=500000 cap is not applied",
)


class InternVLConfigError(ValueError):
    """A verl config that cannot train InternVL; the message says what to change."""


def is_internvl(config: DictConfig, family: str | None = None) -> bool:
    """The recipe's ``model.family``, or (for a plain verl config) the checkpoint's name."""
    if family is not None:
        return family == FAMILY
    path = str(OmegaConf.select(config, "actor_rollout_ref.model.path", default="") or "")
    return "internvl" in path.lower()


def _sequence_parallel_sizes(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node:
            child = f"{path}.{key}"
            if key == "ulysses_sequence_parallel_size":
                yield child, OmegaConf.select(node, str(key), default=1)
            else:
                yield from _sequence_parallel_sizes(node.get(key), child)


def check_internvl(config: DictConfig, family: str | None = None) -> None:
    """Plan-time checks for an InternVL run (nothing for other models); raises :class:`InternVLConfigError`."""
    if not is_internvl(config, family):
        return
    problems = []
    parallel = [
        f"{key}={size}"
        for key, size in _sequence_parallel_sizes(config.actor_rollout_ref, "actor_rollout_ref")
        if isinstance(size, int) and size > 1
    ]
    if parallel:
        problems.append(
            f"Ulysses sequence parallelism is not wired for InternVL (verl's monkey_patch.py covers other "
            f"vision-language model types): set {', '.join(parallel)} to 1"
        )
    path = str(OmegaConf.select(config, "actor_rollout_ref.model.path", default="") or "").rstrip("/")
    if path in NATIVE_CHECKPOINTS:
        problems.append(
            f"actor_rollout_ref.model.path={path} is the remote-code checkpoint (InternVLChatModel); use the "
            f"transformers-native {NATIVE_CHECKPOINTS[path]}"
        )
    if problems:
        raise InternVLConfigError("InternVL on verl: " + "; ".join(problems))


def refuse_training(config: DictConfig, family: str | None = None) -> None:
    """Before a real run: InternVL needs the runtime fixes listed in :data:`RUNTIME_GAPS` (issue #15)."""
    if is_internvl(config, family):
        raise InternVLConfigError(
            "InternVL on verl passes --dry-run, but training is not wired yet (issue #15): "
            + "; ".join(RUNTIME_GAPS)
            + ". Use backend=trl for InternVL meanwhile"
        )
