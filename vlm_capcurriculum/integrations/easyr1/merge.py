"""Merge EasyR1's FSDP checkpoint shards into a Hugging Face model directory (the chained mode's hand-off).

EasyR1's ``FSDPCheckpointManager.save_checkpoint`` writes, per rank, ``model_world_size_{W}_rank_{R}.pt``: the
sharded state dict of ``torch.distributed.checkpoint.state_dict.get_model_state_dict``, whose values are
DTensors over the FSDP device mesh (``("fsdp",)``, or ``("ddp", "fsdp")`` for HSDP) holding this rank's piece.
Rank 0 also writes ``huggingface/`` with the config, generation config and processor, but no weights, which
is why the reference one-shot script's stage 2 (``model_path=.../actor/huggingface``) has nothing to load.

This module reassembles every tensor from its pieces (by the mesh coordinate of each rank, checked against the
DTensor's global shape) and writes a loadable model directory with :mod:`.hf_export`.

Command line: ``python -m vlm_capcurriculum.integrations.easyr1.merge ACTOR_DIR --output OUT_DIR``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor, Replicate, Shard

from .hf_export import DTYPES, has_weights, write_hf_model_dir

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


def _shard_dim(tensor: DTensor) -> tuple[int, int] | None:
    """(mesh dim, tensor dim) of the single Shard placement, or None when fully replicated."""
    sharded = [(mesh_dim, p.dim) for mesh_dim, p in enumerate(tensor.placements) if isinstance(p, Shard)]
    unsupported = [p for p in tensor.placements if not isinstance(p, (Shard, Replicate))]
    if unsupported or len(sharded) > 1:
        raise CheckpointError(f"unsupported DTensor placements {tensor.placements} (FSDP/HSDP only)")
    return sharded[0] if sharded else None


def merge_shards(shard_paths: Sequence[Path], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Reassemble full tensors from per-rank shard files (cast to ``dtype`` as they are read)."""
    pieces: dict[str, list[tuple[int, torch.Tensor]]] = {}
    layout: dict[str, tuple[torch.Size, int | None]] = {}
    plain: dict[str, torch.Tensor] = {}
    for rank, path in enumerate(shard_paths):
        state = torch.load(path, map_location="cpu", weights_only=False)
        if rank > 0 and set(state) != set(layout) | set(plain):
            raise CheckpointError(f"{path}: its keys differ from rank 0's")
        for key, value in state.items():
            if not isinstance(value, DTensor):
                local = value if dtype is None or not torch.is_floating_point(value) else value.to(dtype)
                if rank == 0:
                    plain[key] = local
                elif not torch.equal(plain[key], local):
                    raise CheckpointError(f"{path}: unsharded tensor {key!r} differs from rank 0's")
                continue
            mesh = value.device_mesh.mesh
            coordinate = [int(index) for index in (mesh == rank).nonzero()[0]]
            shard = _shard_dim(value)
            replicated_dims = [dim for dim in range(mesh.ndim) if shard is None or dim != shard[0]]
            layout[key] = (value.shape, None if shard is None else shard[1])
            if any(coordinate[dim] != 0 for dim in replicated_dims):
                continue  # a replica of a piece another rank already provided
            local = value.to_local().detach()
            if dtype is not None and torch.is_floating_point(local):
                local = local.to(dtype)
            order = 0 if shard is None else coordinate[shard[0]]
            pieces.setdefault(key, []).append((order, local.clone()))
        del state
    merged = dict(plain)
    for key, parts in pieces.items():
        shape, tensor_dim = layout[key]
        parts.sort(key=lambda item: item[0])
        tensor = parts[0][1] if tensor_dim is None else torch.cat([part for _, part in parts], dim=tensor_dim)
        if tensor.shape != shape:
            raise CheckpointError(f"{key!r}: pieces assemble to {tuple(tensor.shape)}, expected {tuple(shape)}")
        merged[key] = tensor
    return merged


def merge_actor_checkpoint(
    actor_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    dtype: torch.dtype = torch.bfloat16,
    overwrite: bool = False,
    trust_remote_code: bool = False,
) -> Path:
    """Write ``actor_dir``'s weights (EasyR1 ``global_step_N/actor``) as a Hugging Face model at ``out_dir``."""
    from transformers import AutoConfig, GenerationConfig

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
    config = AutoConfig.from_pretrained(hf_dir, trust_remote_code=trust_remote_code)
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
        overwrite=overwrite,
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vlm_capcurriculum.integrations.easyr1.merge",
        description="Merge EasyR1 FSDP shards (global_step_N/actor) into a Hugging Face model directory.",
    )
    parser.add_argument("actor_dir", help="EasyR1 checkpoint folder global_step_N/actor")
    parser.add_argument("--output", required=True, help="directory to create")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = merge_actor_checkpoint(args.actor_dir, args.output, dtype=DTYPES[args.dtype], overwrite=args.overwrite)
    except (CheckpointError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
