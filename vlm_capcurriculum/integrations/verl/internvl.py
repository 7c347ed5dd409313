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
(:data:`RUNTIME_GAPS`, each a fact about verl 0.9.1 read from its sources). The first three have patches below
(:func:`patch_hf_processor`, :func:`patch_prompt_decode`, :func:`patch_text_only_vision_forward`), tested but not
yet applied by ``plugin.py``.
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


# ------------------------------------------------------------------------------------------ runtime patches
# Two of the RUNTIME_GAPS, fixed by wrapping (never editing) verl 0.9.1. Private names touched, to re-check on upgrade:
#   verl.utils.tokenizer.hf_processor and its by-name imports verl.utils.hf_processor,
#   verl.workers.config.model.hf_processor (module attributes rebound);
#   verl.experimental.agent_loop.agent_loop.AgentLoopWorker._compute_multi_modal_inputs (wrapped) and the
#   worker's ``tokenizer`` / ``processor`` attributes it reads; transformers' InternVLModel.forward (wrapped).
# Not yet applied by the plugin (verl/plugin.py), and the other gaps remain: refuse_training() still refuses.

_HF_PROCESSOR_MODULES = ("verl.utils.tokenizer", "verl.utils", "verl.workers.config.model")


def _is_internvl_processor(processor: Any) -> bool:
    return type(processor).__name__.startswith("InternVL") and hasattr(processor, "image_token")


def patch_hf_processor() -> None:
    """``hf_processor`` returns InternVL's processor (verl 0.9.1 matches class names and returns None for it, with a
    warning). InternVL uses 1-D RoPE, so no ``get_rope_index`` is bound; the config is attached as verl does."""
    import importlib

    tokenizer_module = importlib.import_module("verl.utils.tokenizer")
    original = tokenizer_module.hf_processor
    if getattr(original, "_capcurriculum_internvl", False):
        return

    def hf_processor(name_or_path: Any, **kwargs: Any) -> Any:
        from transformers import AutoConfig, AutoProcessor

        try:
            config = AutoConfig.from_pretrained(name_or_path, **kwargs)
        except Exception:  # a path verl's own function reports on
            return original(name_or_path, **kwargs)
        if getattr(config, "model_type", None) != FAMILY:
            return original(name_or_path, **kwargs)
        processor = AutoProcessor.from_pretrained(name_or_path, **kwargs)
        processor.config = config
        return processor

    hf_processor._capcurriculum_internvl = True  # type: ignore[attr-defined]
    hf_processor.__wrapped__ = original  # type: ignore[attr-defined]
    for name in _HF_PROCESSOR_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "hf_processor", None) is original:
            module.hf_processor = hf_processor


class _KeepImageTokenDecode:
    """A tokenizer whose ``decode`` keeps InternVL's image token (``<IMG_CONTEXT>``) while skipping the other
    special tokens, so the processor re-expands one placeholder per image (the agent loop collapsed the runs)."""

    def __init__(self, tokenizer: Any, image_token: str) -> None:
        self._tokenizer = tokenizer
        self._image_token = image_token
        self._image_token_id = tokenizer.convert_tokens_to_ids(image_token)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def decode(self, token_ids: Any, *args: Any, **kwargs: Any) -> str:
        ids = token_ids.tolist() if hasattr(token_ids, "tolist") else list(token_ids)
        pieces, current = [], []
        for token_id in ids:
            if token_id == self._image_token_id:
                pieces.append(self._tokenizer.decode(current, *args, **kwargs))
                pieces.append(self._image_token)
                current = []
            else:
                current.append(token_id)
        pieces.append(self._tokenizer.decode(current, *args, **kwargs))
        return "".join(pieces)


def patch_prompt_decode() -> None:
    """The agent loop's ``_compute_multi_modal_inputs`` re-renders the prompt with ``skip_special_tokens=True``,
    which drops ``<IMG_CONTEXT>``; for an InternVL processor it runs with a tokenizer that keeps it (a sync method:
    the swap cannot interleave with another coroutine of the worker)."""
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    original = AgentLoopWorker._compute_multi_modal_inputs
    if getattr(original, "_capcurriculum_internvl", False):
        return

    def _compute_multi_modal_inputs(self: Any, output: Any, input_ids: Any) -> Any:
        processor = getattr(self, "processor", None)
        if processor is None or not _is_internvl_processor(processor):
            return original(self, output, input_ids)
        tokenizer = self.tokenizer
        self.tokenizer = _KeepImageTokenDecode(tokenizer, processor.image_token)
        try:
            return original(self, output, input_ids)
        finally:
            self.tokenizer = tokenizer

    _compute_multi_modal_inputs._capcurriculum_internvl = True  # type: ignore[attr-defined]
    AgentLoopWorker._compute_multi_modal_inputs = _compute_multi_modal_inputs  # type: ignore[method-assign]


def patch_text_only_vision_forward() -> None:
    """``InternVLModel.forward`` runs the vision tower only when ``pixel_values`` are given; under FSDP a rank whose
    micro-batch is text-only then skips the tower's all-gathers (and reduce-scatters) that a rank with an image
    issues, and the ranks mismatch. As verl and EasyR1 do for Qwen's tower, a text-only forward also runs tower and
    projector on one blank tile and adds ``0 x`` their output's sum to the input embeddings: where image features
    enter, so forward and backward visit the FSDP units in the image path's order; the same values, zero vision
    gradients. Patches the transformers class (``InternVLModel.forward``; keyword calls, as
    ``InternVLForConditionalGeneration`` makes)."""
    import torch
    from transformers.models.internvl.modeling_internvl import InternVLModel

    original = InternVLModel.forward
    if getattr(original, "_capcurriculum_internvl", False):
        return

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs.get("pixel_values") is not None or kwargs.get("input_ids") is None:
            return original(self, *args, **kwargs)
        if kwargs.get("inputs_embeds") is not None:
            return original(self, **kwargs)
        input_ids = kwargs.pop("input_ids")
        kwargs.pop("inputs_embeds", None)
        embeds = self.get_input_embeddings()(input_ids)
        size = self.config.vision_config.image_size
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        blank = torch.zeros(1, 3, height, width, device=embeds.device, dtype=self.dtype)
        features = self.get_image_features(
            pixel_values=blank,
            vision_feature_layer=self.config.vision_feature_layer,
            vision_feature_select_strategy=self.config.vision_feature_select_strategy,
            return_dict=True,
        ).pooler_output
        return original(self, input_ids=None, inputs_embeds=embeds + 0.0 * features.sum().to(embeds.dtype), **kwargs)

    forward._capcurriculum_internvl = True  # type: ignore[attr-defined]
    forward.__wrapped__ = original  # type: ignore[attr-defined]
    InternVLModel.forward = forward  # type: ignore[method-assign]
