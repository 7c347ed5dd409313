"""Building blocks for the EasyR1 lane tests: a tiny Qwen2.5-VL for transformers 4.x, EasyR1-style FSDP
wrapping on CPU (gloo), and multi-process runs.

The unit-level tiny Qwen2.5-VL here (:func:`save_model_dir`: a byte-level tokenizer, hidden size 32) is smaller
than the package's; the end-to-end runs use the package's own tiny families, format warm-started as the CPU quick
starts do (:func:`warm_tiny_model`). Without torchvision (no CPU wheel for torch 2.13 on PyPI), transformers 4.57
cannot build the stock processors (their video processors need torchvision): both use the package's image-only
processors (``vlm_capcurriculum.models.processors``), registered with ``AutoProcessor`` so that EasyR1's
``get_processor`` loads them from a model directory.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import MixedPrecision, ShardingStrategy

REPO = Path(__file__).resolve().parents[3]  # not testkit: subprocess scripts import this module outside pytest

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# The same template with image parts (a processor's chat template receives content lists).
CHAT_TEMPLATE_WITH_IMAGES = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_GRID = (1, 4, 4)  # t, h, w in patches: 16 patches, merged 2x2 into 4 image tokens


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer with Qwen's special tokens (no merges: one token per byte)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={token: index for index, token in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    return Qwen2TokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
    )


def register_processor() -> None:
    """Let ``AutoProcessor.from_pretrained`` (EasyR1's ``get_processor``) resolve the image-only processors."""
    from vlm_capcurriculum.models import register_processors

    register_processors()


def build_processor(tokenizer: Any) -> Any:
    """A real Qwen2.5-VL processor over the tiny tokenizer (14-pixel patches, 2x2 merge, as the real model)."""
    from transformers import Qwen2VLImageProcessor

    from vlm_capcurriculum.models import Qwen2_5_VLImageOnlyProcessor

    return Qwen2_5_VLImageOnlyProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=28 * 28 * 64),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE_WITH_IMAGES,
    )


def build_config(tokenizer: Any) -> Any:
    from transformers import Qwen2_5_VLConfig

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 320,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "rope_scaling": {"type": "mrope", "mrope_section": [1, 1, 2]},
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 32,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=None,
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    return config


def build_model(config: Any, seed: int = 0) -> Any:
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(config).float().eval()


def save_model_dir(path: Path, seed: int = 0, *, processor: bool = False) -> Path:
    """A complete tiny model directory (weights, config, tokenizer; with ``processor``, the image-only processor)."""
    tokenizer = build_tokenizer()
    model = build_model(build_config(tokenizer), seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    if processor:
        register_processor()
        build_processor(tokenizer).save_pretrained(path)
    return path


def image_inputs(config: Any, text: str = "what is it?", seed: int = 1) -> dict[str, torch.Tensor]:
    """One image + text sequence, with labels, shaped as Qwen2.5-VL expects."""
    generator = torch.Generator().manual_seed(seed)
    t, h, w = IMAGE_GRID
    patches = t * h * w
    vision = config.vision_config
    patch_dim = vision.in_channels * vision.temporal_patch_size * vision.patch_size**2
    pixel_values = torch.randn(patches, patch_dim, generator=generator)
    image_tokens = patches // vision.spatial_merge_size**2
    text_ids = [ord(char) % 200 + 20 for char in text]
    ids = [config.vision_start_token_id, *[config.image_token_id] * image_tokens, config.vision_end_token_id, *text_ids]
    input_ids = torch.tensor([ids])
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": pixel_values,
        "image_grid_thw": torch.tensor([IMAGE_GRID]),
        "labels": input_ids.clone(),
    }


def wrap_fsdp(model: Any, *, use_orig_params: bool, param_dtype: torch.dtype = torch.bfloat16) -> FSDP:
    """Wrap as FSDPWorker._build_model_optimizer does (EasyR1 @ b44b311), on CPU over the default group.

    Same wrap policy (verl.utils.fsdp_utils.get_fsdp_wrap_policy), FULL_SHARD, mixed precision with fp32
    reduce/buffers; only the device (CPU instead of CUDA) and rank-0 init differ.
    """
    from verl.utils.fsdp_utils import get_fsdp_wrap_policy

    mesh = init_device_mesh("cpu", (dist.get_world_size(),), mesh_dim_names=("fsdp",))
    return FSDP(
        model,
        sharding_strategy=ShardingStrategy.FULL_SHARD,
        auto_wrap_policy=get_fsdp_wrap_policy(model),
        mixed_precision=MixedPrecision(
            param_dtype=param_dtype,
            reduce_dtype=torch.float32,
            buffer_dtype=torch.float32,
            cast_forward_inputs=True,
        ),
        device_id=torch.device("cpu"),
        forward_prefetch=False,
        use_orig_params=use_orig_params,
        device_mesh=mesh,
    )


def build_actor(
    fsdp_module: FSDP,
    *,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    warmup: int = 0,
    strategy: str = "adamw",
    **actor_fields: Any,
) -> tuple[Any, torch.optim.Optimizer, Any]:
    """EasyR1's optimizer (``worker.actor.optim.strategy`` adamw or adamw_bf16), LambdaLR and
    DataParallelPPOActor around ``fsdp_module``, as FSDPWorker._build_model_optimizer / init_model build them."""
    from verl.utils.torch_functional import AnyPrecisionAdamW, get_constant_schedule_with_warmup
    from verl.workers.actor.config import ActorConfig
    from verl.workers.actor.dp_actor import DataParallelPPOActor

    trainable = [param for param in fsdp_module.parameters() if param.requires_grad]
    optimizer: torch.optim.Optimizer
    if strategy == "adamw":
        optimizer = torch.optim.AdamW(trainable, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay, fused=True)
    elif strategy == "adamw_bf16":
        optimizer = AnyPrecisionAdamW(trainable, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    else:
        raise ValueError(strategy)
    scheduler = get_constant_schedule_with_warmup(optimizer=optimizer, num_warmup_steps=warmup)
    config = ActorConfig(use_torch_compile=False, **actor_fields)
    actor = DataParallelPPOActor(config=config, actor_module=fsdp_module, actor_optimizer=optimizer)
    return actor, optimizer, scheduler


def train_step(actor: Any, scheduler: Any, batch: dict[str, torch.Tensor]) -> float:
    """Forward/backward, then EasyR1's own clip + optimizer step (DataParallelPPOActor._optimizer_step)."""
    output = actor.actor_module(**batch)
    output.loss.backward()
    grad_norm = actor._optimizer_step()
    scheduler.step()
    return float(grad_norm)


def full_state(fsdp_module: FSDP) -> dict[str, torch.Tensor]:
    from vlm_capcurriculum.integrations.torch_ops import gather_full_state_dict

    return {key: value.clone() for key, value in gather_full_state_dict(fsdp_module).items()}


# --- processes ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_process_group(rank: int, world_size: int, port: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
    )
    dist.init_process_group("gloo", rank=rank, world_size=world_size)


def _entry(rank: int, function: Callable[..., None], world_size: int, port: int, args: tuple[Any, ...]) -> None:
    torch.set_num_threads(1)
    init_process_group(rank, world_size, port)
    try:
        function(rank, world_size, *args)
    finally:
        dist.destroy_process_group()


def run_distributed(function: Callable[..., None], world_size: int, *args: Any) -> None:
    """Run ``function(rank, world_size, *args)`` in ``world_size`` processes over a gloo group."""
    import torch.multiprocessing as mp

    mp.spawn(_entry, args=(function, world_size, free_port(), args), nprocs=world_size, join=True)


# --- scenarios run in several processes (module-level so that spawned processes can import them) ---------------


def _same(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[key], right[key]) for key in left)


def two_rank_scenario(rank: int, world_size: int, out_dir: str) -> None:
    """Freeze the tower mid-run on a 2-rank FSDP actor, export a stage model, and merge EasyR1's own shards."""
    from transformers import Qwen2_5_VLForConditionalGeneration
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager

    from vlm_capcurriculum.integrations import torch_ops
    from vlm_capcurriculum.integrations.easyr1.hf_export import (
        merge_actor_checkpoint,
        read_hf_weights,
        write_hf_model_dir,
    )

    out = Path(out_dir)
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    batch = image_inputs(config, text=f"rank {rank} asks", seed=rank + 1)  # different data on each rank
    fsdp_module = wrap_fsdp(build_model(config), use_orig_params=True)
    actor, optimizer, scheduler = build_actor(fsdp_module)
    train_step(actor, scheduler, batch)
    torch_ops.VisionTowerGate(fsdp_module, optimizer).set_trainable(False)
    before = full_state(fsdp_module)
    for _ in range(2):
        train_step(actor, scheduler, batch)
    after = full_state(fsdp_module)

    weights = torch_ops.gather_full_state_dict(fsdp_module)
    if rank == 0:
        write_hf_model_dir(
            out / "stage_export",
            weights,
            torch_ops.unwrap_model(fsdp_module).config,
            processing_class=tokenizer,
            dtype=torch.float32,
        )
    dist.barrier()
    # resume inside a stage that refreshed its reference: reload the stage-start export into the reference
    reference = wrap_fsdp(build_model(config, seed=9).to(torch.bfloat16).requires_grad_(False), use_orig_params=False)
    torch_ops.load_full_weights(reference, read_hf_weights(out / "stage_export") if rank == 0 else {})
    reference_weights = full_state(reference)
    manager = FSDPCheckpointManager(
        model=fsdp_module, optimizer=optimizer, lr_scheduler=scheduler, processing_class=tokenizer
    )
    manager.save_checkpoint(str(out / "global_step_3" / "actor"), save_model_only=True)
    dist.barrier()
    if rank != 0:
        return
    merged = merge_actor_checkpoint(out / "global_step_3" / "actor", out / "merged", dtype=torch.float32)
    exported = Qwen2_5_VLForConditionalGeneration.from_pretrained(out / "stage_export").state_dict()
    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(merged).state_dict()
    tower = [key for key in before if key.startswith("model.visual.")]
    results = {
        "tower_unchanged": all(torch.equal(before[key], after[key]) for key in tower),
        "text_changed": all(not torch.equal(before[key], after[key]) for key in before if key not in tower),
        "exported_equals_full": _same({key: exported[key] for key in after}, after),
        "merged_equals_full": _same({key: reloaded[key] for key in after}, after),
        "reference_loaded": _same(reference_weights, {key: value.to(torch.bfloat16) for key, value in after.items()}),
    }
    torch.save(results, out / "results.pt")


def hybrid_shard_scenario(rank: int, world_size: int, out_dir: str) -> None:
    """Train one step under HYBRID_SHARD on a (2, 2) mesh, save with EasyR1's manager, merge on rank 0."""
    from transformers import Qwen2_5_VLForConditionalGeneration
    from verl.utils.checkpoint.fsdp_checkpoint_manager import FSDPCheckpointManager
    from verl.utils.fsdp_utils import get_fsdp_wrap_policy

    from vlm_capcurriculum.integrations.easyr1.hf_export import merge_actor_checkpoint

    out = Path(out_dir)
    tokenizer = build_tokenizer()
    config = build_config(tokenizer)
    model = build_model(config)
    mesh = init_device_mesh("cpu", (world_size // 2, 2), mesh_dim_names=("ddp", "fsdp"))
    fsdp_module = FSDP(
        model,
        sharding_strategy=ShardingStrategy.HYBRID_SHARD,
        auto_wrap_policy=get_fsdp_wrap_policy(model),
        device_id=torch.device("cpu"),
        use_orig_params=False,
        device_mesh=mesh,
    )
    actor, optimizer, scheduler = build_actor(fsdp_module)
    train_step(actor, scheduler, image_inputs(config, seed=rank + 1))
    full = full_state(fsdp_module)
    manager = FSDPCheckpointManager(
        model=fsdp_module, optimizer=optimizer, lr_scheduler=scheduler, processing_class=tokenizer
    )
    manager.save_checkpoint(str(out / "global_step_1" / "actor"), save_model_only=True)
    dist.barrier()
    if rank != 0:
        return
    shard = torch.load(out / "global_step_1" / "actor" / "model_world_size_4_rank_0.pt", weights_only=False)
    mesh_names = next(iter(shard.values())).device_mesh.mesh_dim_names
    merged = merge_actor_checkpoint(out / "global_step_1" / "actor", out / "merged", dtype=torch.float32)
    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(merged).state_dict()
    torch.save(
        {"mesh": mesh_names, "merged_equals_full": _same({key: reloaded[key] for key in full}, full)},
        out / "results.pt",
    )


# --- run configurations over the sample data ----------------------------------------------------------------

SAMPLES = REPO / "data_recipes" / "samples"


def sample_stages() -> list[dict[str, Any]]:
    """The paper's three stages over data_recipes/samples (36 rows each), with short epochs: 8 + 4 + 4 steps of 8."""
    return [
        {"name": "perception", "train_files": [str(SAMPLES / "perception.jsonl")], "epochs": 2,
         "overrides": {"vision_tower": "trainable"}},
        {"name": "text_reasoning", "train_files": [str(SAMPLES / "text_reasoning.jsonl")], "epochs": 1,
         "overrides": {"vision_tower": "frozen"}},
        {"name": "visual_reasoning", "train_files": [str(SAMPLES / "visual_reasoning.jsonl")], "epochs": 1,
         "overrides": {"vision_tower": "trainable"}},
    ]  # fmt: skip


def sample_run_config(
    model_dir: Path, save_dir: Path, reward_function: str | None = None, **sections: Any
) -> dict[str, Any]:
    """An entry-point config (EasyR1 keys + curriculum) for the tiny model on the samples; ``sections`` are merged
    one level deep (``trainer={"save_freq": 5}`` updates the trainer section). ``reward_function`` None: the entry
    point's default, our reward_fns/capcurriculum.py."""
    config: dict[str, Any] = {
        "data": {
            "max_prompt_length": 1024,
            "max_response_length": 32,
            "min_pixels": 3136,  # the 72x72 sample images stay as they are (no 512x512 upscale)
            "max_pixels": 12544,
            "filter_overlong_prompts_workers": 1,
            "val_files": str(SAMPLES / "visual_reasoning.jsonl"),
            "format_prompt": "think_boxed.jinja",
        },
        "algorithm": {"use_kl_loss": True, "kl_penalty": "low_var_kl", "kl_coef": 0.01},
        "worker": {
            "actor": {
                "global_batch_size": 8,
                "micro_batch_size_per_device_for_experience": 8,
                "model": {"model_path": str(model_dir)},
            },
            "rollout": {"n": 2, "val_override_config": {"temperature": 0.6, "n": 1}},
            "reward": {"reward_function": reward_function},
        },
        "trainer": {
            "save_checkpoint_path": str(save_dir),
            "n_gpus_per_node": 2,
            "logger": ["file"],
            "val_freq": -1,
            "save_freq": -1,
        },
        "curriculum": {
            "mode": "staged",
            "batch_size": 8,
            "overrides": {
                "reset_optimizer": True,
                "refresh_reference": True,
                "save_checkpoint": True,
                "validate": True,
            },
            "stages": sample_stages(),
        },
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config


WARM_START_STEPS = 60  # the tiny recipes' model.tiny_warm_start_steps (recipes/model/tiny_*.yaml)


def warm_tiny_model(family: str, root: Path) -> Path:
    """``<root>/base_model``: the package's tiny ``family`` format warm-started on the sample records exactly as a
    ``tiny://`` recipe builds it for the TRL and verl quick starts (``models.tiny.prepare_tiny_model``), so
    the EasyR1 run's rewards vary within a group and the policy gradient is not zero."""
    from vlm_capcurriculum.models.tiny import prepare_tiny_model
    from vlm_capcurriculum.prompts import THINK_BOXED, read_prompt
    from vlm_capcurriculum.schema import read_records

    records = []
    for stage in sample_stages():
        records += read_records(stage["train_files"][0], capability=stage["name"]).records
    return prepare_tiny_model(
        family,
        root,
        warm_start_steps=WARM_START_STEPS,
        records=records,
        image_paths=lambda index: [SAMPLES / image for image in records[index].images],
        template=read_prompt(THINK_BOXED),
    )


def write_yaml(config: dict[str, Any], path: Path) -> Path:
    """Exact floats whatever EasyR1 registered with PyYAML (see chained.save_stage_config)."""
    from omegaconf import OmegaConf

    from vlm_capcurriculum.integrations.easyr1.chained import save_stage_config

    save_stage_config(OmegaConf.create(config), path)
    return path
