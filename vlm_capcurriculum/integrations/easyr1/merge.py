"""Merge EasyR1's FSDP checkpoint shards (``global_step_N/actor``) into a Hugging Face model: the chain's hand-off.

``FSDPCheckpointManager`` writes one ``model_world_size_{W}_rank_{R}.pt`` per rank (DTensors over the ``("fsdp",)``
or HSDP ``("ddp", "fsdp")`` mesh) and ``huggingface/`` with config and processor but no weights, which is why the
reference one-shot script's stage 2 (``model_path=.../actor/huggingface``) has nothing to load.

Not EasyR1's ``scripts/model_merger.py``: it is not installed with the package (``find_packages`` takes ``verl`` only)
and its logic sits under ``if __name__ == "__main__"``, so nothing of it can be imported from an installed EasyR1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor, Replicate, Shard
from transformers import AutoConfig, GenerationConfig

from .hf_export import write_hf_model_dir
from .layout import has_weights

SHARD_NAME = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")


class CheckpointError(ValueError):
    """An EasyR1 checkpoint folder is incomplete or not in the expected format."""


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


def merge_shards(shard_paths: Sequence[Path], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
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
                    raise CheckpointError(f"{key!r}: unsupported DTensor placements {value.placements} (FSDP/HSDP only)")
                layout[key] = (value.shape, shards[0][1] if shards else None)
                if any(index for dim, index in enumerate(coordinate) if not shards or dim != shards[0][0]):
                    continue  # a replica of a piece another rank provides
                order = coordinate[shards[0][0]] if shards else 0
                value = value.to_local()
            elif rank > 0:
                continue  # not sharded: rank 0's copy
            else:
                layout[key] = (value.shape, None)
            local = value.detach() if dtype is None or not value.is_floating_point() else value.detach().to(dtype)
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


def next_stage_model(checkpoint: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """A path the next stage can pass as ``worker.actor.model.model_path``.

    ``checkpoint`` may be ``global_step_N``, ``global_step_N/actor`` or ``global_step_N/actor/huggingface``
    (what the reference script passes). A folder that already holds weights is returned as is; otherwise
    the shards are merged into ``out_dir`` (reused when a previous attempt already completed it).
    """
    path = Path(checkpoint)
    if has_weights(path):
        return path
    if path.name == "huggingface":
        path = path.parent
    if (path / "actor").is_dir():
        path = path / "actor"
    if has_weights(out_dir):
        return Path(out_dir).absolute()
    return merge_actor_checkpoint(path, out_dir)
