"""InternVL on verl: what is refused at plan time (Ulysses > 1, remote-code checkpoints), the pixel cap as a tile cap,
and the runtime patches against the installed verl 0.9.1 on a saved tiny InternVL3 with its real processor.

The plugin applies the patches when verl imports the patched module (``plugin.AFTER_IMPORT``); each test checks the
patched name verl calls and that verl's own function (``inspect.unwrap``) still fails, so each fails without its patch.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("verl")

import torch
from PIL import Image

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.integrations.verl.internvl import (
    PUBLIC_TILING,
    Tiling,
    check_internvl,
    is_internvl,
    max_patches_for,
    processor_kwargs,
    rollout_image_inputs,
    tiling_of,
)

NATIVE = "actor_rollout_ref.model.path=OpenGVLab/InternVL3_5-8B-HF"
WIDE = (900, 600)  # several tiles plus the thumbnail


@pytest.fixture(scope="module")
def internvl3_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    from vlm_capcurriculum.models import save_tiny

    return str(save_tiny("internvl3", tmp_path_factory.mktemp("internvl") / "tiny_internvl3"))


def test_internvl_is_recognised_by_family_or_checkpoint(verl_config: Any) -> None:
    assert is_internvl(verl_config([NATIVE]))
    assert is_internvl(verl_config(), "internvl") and not is_internvl(verl_config([NATIVE]), "qwen3_vl")
    assert not is_internvl(verl_config(["actor_rollout_ref.model.path=Qwen/Qwen3-VL-8B-Instruct"]))


def test_the_native_checkpoint_plans_and_ulysses_is_refused(verl_config: Any) -> None:
    check_internvl(verl_config([NATIVE]), "internvl")
    with pytest.raises(ConfigError) as error:
        check_internvl(verl_config([NATIVE, "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "internvl")
    message = str(error.value)
    assert "Ulysses sequence parallelism is not wired for InternVL" in message
    assert "actor_rollout_ref.actor.ulysses_sequence_parallel_size=2" in message  # the key to change, named
    # the same setting is fine for a Qwen model
    check_internvl(verl_config(["actor_rollout_ref.actor.ulysses_sequence_parallel_size=2"]), "qwen3_vl")


def test_the_remote_code_checkpoint_is_refused_with_the_native_id(verl_config: Any) -> None:
    with pytest.raises(ConfigError, match="use the transformers-native OpenGVLab/InternVL3-8B-hf"):
        check_internvl(verl_config(["actor_rollout_ref.model.path=OpenGVLab/InternVL3-8B"]))


# ------------------------------------------------------------------------------------------------ pixel cap
def test_max_pixels_becomes_the_most_tiles_that_fit() -> None:
    tile = PUBLIC_TILING.tile**2  # 448 x 448 = 200704 px
    assert max_patches_for(500000, PUBLIC_TILING) == 1  # 2 tiles fit; 2 crops would bring a thumbnail (3 tiles)
    assert max_patches_for(3 * tile, PUBLIC_TILING) == 2  # 2 crops + thumbnail
    assert max_patches_for(tile, PUBLIC_TILING) == 1
    assert max_patches_for(4194304, PUBLIC_TILING) is None  # 20 tiles fit: the processor's own 12 (+1) bind
    with pytest.raises(ConfigError, match="below one InternVL tile"):
        max_patches_for(tile - 1, PUBLIC_TILING)
    merged = processor_kwargs({"min_pixels": 262144, "max_pixels": 500000}, PUBLIC_TILING)
    assert merged == {"max_patches": 1}  # min_pixels has no InternVL counterpart: every tile is full size
    assert processor_kwargs({"min_pixels": 262144, "max_pixels": 4194304}, PUBLIC_TILING) == {}


def test_the_tiling_is_read_from_the_checkpoint(internvl3_path: str, tmp_path: Path) -> None:
    assert tiling_of("tiny://internvl3_5") == Tiling(tile=56, max_patches=4)
    assert tiling_of(internvl3_path) == Tiling(tile=56, max_patches=4)  # processor_config.json (transformers 5)
    (tmp_path / "preprocessor_config.json").write_text('{"size": {"height": 336, "width": 336}, "max_patches": 6}')
    assert tiling_of(str(tmp_path)) == Tiling(tile=336, max_patches=6)  # the hub checkpoints' file
    assert tiling_of("OpenGVLab/InternVL3-8B-hf") == PUBLIC_TILING  # not on disk at plan time


def test_the_tile_cap_reaches_the_processor(internvl3_path: str) -> None:
    """The translated cap is what InternVL's processor reads (``max_patches``) and the rollout tiles the same way."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(internvl3_path)
    kwargs = processor_kwargs({"max_pixels": 2 * 56 * 56}, tiling_of(internvl3_path))
    assert kwargs == {"max_patches": 1}
    text = _prompt(processor)
    image = Image.new("RGB", WIDE, "white")
    for mm_kwargs, tiles in (({}, 4 + 1), (kwargs, 1)):  # tiny cap 4 crops + thumbnail; capped: one tile
        rendered = processor(text=[text], images=[image], return_tensors="pt", **mm_kwargs)
        assert rendered["pixel_values"].shape[0] == tiles
        inputs, placeholders = rollout_image_inputs(processor, [image], mm_kwargs)
        assert torch.equal(inputs["pixel_values"], rendered["pixel_values"])
        assert placeholders == int((rendered["input_ids"] == processor.image_token_id).sum())


# ------------------------------------------------------------------------------------------ runtime patches
def _prompt(processor: Any) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_verl_loads_internvls_processor(internvl3_path: str) -> None:
    """``HFModelConfig`` (every worker's model config) gets InternVL's processor; verl 0.9.1's own ``hf_processor``
    returns None for it."""
    from transformers import InternVLProcessor
    from verl.workers.config.model import HFModelConfig

    model_config_module = importlib.import_module("verl.workers.config.model")
    with pytest.warns(UserWarning, match="Unsupported processor type"):
        assert inspect.unwrap(model_config_module.hf_processor)(internvl3_path) is None  # the gap
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = HFModelConfig(path=internvl3_path)
    assert not [w for w in caught if "Failed to create processor" in str(w.message)]  # handled, so verl's note stays quiet
    assert isinstance(config.processor, InternVLProcessor) and config.processor.config.model_type == "internvl"
    assert config.processor.image_token == "<IMG_CONTEXT>"
    assert importlib.import_module("verl.utils").hf_processor(internvl3_path) is not None  # the re-export too


@pytest.mark.parametrize("mm_kwargs", [{}, {"max_patches": 1}], ids=["processor-tiling", "merged-tile-cap"])
def test_agent_loop_training_inputs_have_the_prompts_tiling(internvl3_path: str, mm_kwargs: dict) -> None:
    """The agent loop re-renders the expanded prompt for the training inputs: verl's own decode drops
    ``<IMG_CONTEXT>`` (the processor rejects the placeholder count); patched, the training inputs hold the same tiles
    as the prompt the rollout generated from (and as the rollout computes for it)."""
    from transformers import AutoProcessor
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker

    processor = AutoProcessor.from_pretrained(internvl3_path)
    image = Image.new("RGB", WIDE, "white")
    rendered = processor(text=[_prompt(processor)], images=[image], return_tensors="pt", **mm_kwargs)
    worker = object.__new__(AgentLoopWorker)
    worker.processor, worker.tokenizer = processor, processor.tokenizer
    output = SimpleNamespace(multi_modal_data={"images": [image]}, mm_processor_kwargs=mm_kwargs)
    with pytest.raises(ValueError, match="image placeholders"):
        inspect.unwrap(AgentLoopWorker._compute_multi_modal_inputs)(worker, output, rendered["input_ids"])
    inputs = worker._compute_multi_modal_inputs(output, rendered["input_ids"])
    assert torch.equal(inputs["pixel_values"], rendered["pixel_values"])  # the same tiles as the prompt
    assert torch.equal(rollout_image_inputs(processor, [image], mm_kwargs)[0]["pixel_values"], inputs["pixel_values"])
    assert worker.tokenizer is processor.tokenizer  # restored
