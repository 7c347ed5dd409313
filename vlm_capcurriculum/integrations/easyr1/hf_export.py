"""Hugging Face model directories that ``from_pretrained`` and vLLM load: the stage-end model (weights gathered from the
live FSDP actor) and the chain's hand-off (EasyR1's ``global_step_N/actor`` shards merged), written under a temporary
name and renamed into place, so a crash never leaves a half-written model where the next stage loads it.

Not EasyR1's ``scripts/model_merger.py``: it is not installed with the package and its logic sits under
``if __name__ == "__main__"``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from packaging.version import Version
from torch.distributed.tensor import DTensor, Replicate, Shard
from transformers import AutoConfig, GenerationConfig, PretrainedConfig, PreTrainedModel

from .layout import WEIGHT_FILES

# Files of an EasyR1 `huggingface/` folder that we regenerate rather than copy.
_REGENERATED = {"config.json", "generation_config.json", *WEIGHT_FILES}

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
SHARD_NAME = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")


class CheckpointError(ValueError):
    """An EasyR1 checkpoint folder is incomplete or not in the expected format."""


def model_class_for(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The transformers class named by ``config.architectures[0]``."""
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        raise ValueError(f"{type(config).__name__} has no `architectures`; cannot tell which model class to build")
    model_class = getattr(transformers, architectures[0], None)
    if model_class is None:
        raise ValueError(
            f"architecture {architectures[0]!r} is not a transformers class (remote-code models are not "
            "supported by this exporter yet)"
        )
    return model_class


def _dtype_argument(dtype: torch.dtype | str) -> dict[str, torch.dtype | str]:
    # transformers renamed `torch_dtype` to `dtype` in 4.56; EasyR1 accepts transformers >= 4.54.
    new_name = Version(Version(transformers.__version__).base_version) >= Version("4.56")
    return {"dtype": dtype} if new_name else {"torch_dtype": dtype}


def read_hf_weights(model_dir: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """All weights of a model directory (tied ones included), as the model class names them."""
    config = AutoConfig.from_pretrained(model_dir)
    model = model_class_for(config).from_pretrained(model_dir, device_map="cpu", **_dtype_argument("auto"))
    return dict(model.state_dict())


def build_model(config: PretrainedConfig, state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype) -> Any:
    """Instantiate the model on the meta device and adopt ``state_dict``; every weight must be provided."""
    model_class = model_class_for(config)
    with torch.device("meta"):
        model = model_class._from_config(config, **_dtype_argument(dtype))
    cast = {key: value.to(dtype) if value.is_floating_point() else value for key, value in state_dict.items()}
    result = model.load_state_dict(cast, strict=False, assign=True)
    if result.unexpected_keys:
        raise ValueError(
            f"{len(result.unexpected_keys)} weights do not belong to {model_class.__name__}: "
            f"{sorted(result.unexpected_keys)[:10]}"
        )
    model.tie_weights()  # a tied output layer may be absent from the state dict
    params = dict(model.named_parameters(remove_duplicate=False))
    buffers = dict(model.named_buffers(remove_duplicate=False))
    # every parameter, and every persistent buffer the state dict should have had, must now hold data
    expected = set(params) | (set(result.missing_keys) & set(buffers))
    still_missing = sorted(name for name in expected if {**buffers, **params}[name].is_meta)
    if still_missing:
        raise ValueError(f"{len(still_missing)} weights of {model_class.__name__} are missing: {still_missing[:10]}")
    return model


def write_hf_model_dir(
    out_dir: str | os.PathLike[str],
    state_dict: Mapping[str, torch.Tensor],
    config: PretrainedConfig,
    *,
    processing_class: Any | None = None,
    copy_files_from: str | os.PathLike[str] | None = None,
    generation_config: GenerationConfig | None = None,
    dtype: torch.dtype = torch.bfloat16,
    overwrite: bool = False,
) -> Path:
    """Save ``state_dict`` as a Hugging Face model directory at ``out_dir`` and return its path. The processor comes
    from ``processing_class`` or as the files of ``copy_files_from`` (EasyR1's ``actor/huggingface``); bfloat16 is
    what EasyR1's merger writes and vLLM serves."""
    target = Path(out_dir).absolute()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model = build_model(config, state_dict, dtype)
        if generation_config is not None:
            model.generation_config = generation_config
        model.save_pretrained(staging, safe_serialization=True)
        if processing_class is not None:
            processing_class.save_pretrained(staging)
        if copy_files_from is not None:
            for source in sorted(Path(copy_files_from).iterdir()):
                if source.is_file() and source.name not in _REGENERATED:
                    shutil.copy2(source, staging / source.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if target.exists():  # overwrite: the old directory leaves only once the new one is complete
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


def find_shards(actor_dir: str | os.PathLike[str]) -> list[Path]:
    """The model shard files of ``actor_dir`` in rank order; every rank must be present."""
    directory = Path(actor_dir)
    found: dict[int, dict[int, Path]] = {}
    for path in directory.iterdir() if directory.is_dir() else ():
        match = SHARD_NAME.match(path.name)
        if match:
            found.setdefault(int(match.group(1)), {})[int(match.group(2))] = path
    if not found:
        raise CheckpointError(
            f"{directory} has no EasyR1 model shards (model_world_size_W_rank_R.pt); pass a "
            "`global_step_N/actor` folder written by EasyR1"
        )
    if len(found) > 1:
        raise CheckpointError(f"{directory} mixes shards of world sizes {sorted(found)}; remove the stale ones")
    ((world_size, ranks),) = found.items()
    missing = sorted(set(range(world_size)) - set(ranks))
    if missing:
        raise CheckpointError(f"{directory}: shards of ranks {missing} (of world size {world_size}) are missing")
    return [ranks[rank] for rank in range(world_size)]


def merge_shards(shard_paths: Sequence[Path], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Reassemble full tensors from per-rank shard files (cast to ``dtype`` as they are read): each tensor's pieces
    come from the ranks at coordinate 0 of every mesh dimension it is replicated over, in order along its shard."""
    pieces: dict[str, list[tuple[int, torch.Tensor]]] = {}
    layout: dict[str, tuple[torch.Size, int | None]] = {}
    for rank, path in enumerate(shard_paths):
        state = torch.load(path, map_location="cpu", weights_only=False)
        if rank > 0 and set(state) != set(layout):
            raise CheckpointError(f"{path}: its keys differ from rank 0's")
        for key, value in state.items():
            order = 0
            if isinstance(value, DTensor):
                coordinate = (value.device_mesh.mesh == rank).nonzero()[0].tolist()
                shards = [(mesh_dim, p.dim) for mesh_dim, p in enumerate(value.placements) if isinstance(p, Shard)]
                if len(shards) > 1 or not all(isinstance(p, (Shard, Replicate)) for p in value.placements):
                    raise CheckpointError(
                        f"{key!r}: unsupported DTensor placements {value.placements} (FSDP/HSDP only)"
                    )
                layout[key] = (value.shape, shards[0][1] if shards else None)
                if any(index for dim, index in enumerate(coordinate) if not shards or dim != shards[0][0]):
                    continue  # a replica of a piece another rank provides
                order = coordinate[shards[0][0]] if shards else 0
                value = value.to_local()
            elif rank > 0:
                continue  # not sharded: rank 0's copy
            else:
                layout[key] = (value.shape, None)
            local = value.detach().to(dtype) if value.is_floating_point() else value.detach()
            pieces.setdefault(key, []).append((order, local.clone()))
        del state
    merged = {}
    for key, parts in pieces.items():
        shape, tensor_dim = layout[key]
        parts.sort(key=lambda item: item[0])
        merged[key] = parts[0][1] if tensor_dim is None else torch.cat([part for _, part in parts], dim=tensor_dim)
        if merged[key].shape != shape:
            raise CheckpointError(f"{key!r}: pieces assemble to {tuple(merged[key].shape)}, expected {tuple(shape)}")
    return merged


def merge_actor_checkpoint(
    actor_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """Write ``actor_dir``'s weights (EasyR1 ``global_step_N/actor``) as a Hugging Face model at ``out_dir``."""
    actor = Path(actor_dir)
    hf_dir = actor / "huggingface"
    if not (hf_dir / "config.json").is_file():
        raise CheckpointError(f"{hf_dir}/config.json is missing; EasyR1 writes it next to the model shards")
    if (actor / "lora_adapter").is_dir():
        raise CheckpointError(
            f"{actor} is a LoRA checkpoint; merging adapters into the base model is not supported here yet "
            "(EasyR1's scripts/model_merger.py does it)"
        )
    shards = find_shards(actor)
    config = AutoConfig.from_pretrained(hf_dir)
    generation_config = (
        GenerationConfig.from_pretrained(hf_dir) if (hf_dir / "generation_config.json").is_file() else None
    )
    state_dict = merge_shards(shards, dtype=dtype)
    return write_hf_model_dir(
        out_dir,
        state_dict,
        config,
        copy_files_from=hf_dir,
        generation_config=generation_config,
        dtype=dtype,
    )
