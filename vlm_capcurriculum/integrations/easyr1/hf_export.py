"""Write full model weights as a plain Hugging Face model directory that ``from_pretrained`` and vLLM load.

Shared by the stage-end checkpoint (weights gathered from the live FSDP actor) and by the shard merger
(weights read from EasyR1's ``global_step_N/actor`` shards). The directory is written under a temporary name
and renamed into place, so a crash never leaves a half-written model where the next stage would load it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import transformers
from packaging.version import Version
from transformers import GenerationConfig, PretrainedConfig, PreTrainedModel

from .layout import WEIGHT_FILES

# Files of an EasyR1 `huggingface/` folder that we regenerate rather than copy.
_REGENERATED = {"config.json", "generation_config.json", *WEIGHT_FILES}

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


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
    config = transformers.AutoConfig.from_pretrained(model_dir)
    model = model_class_for(config).from_pretrained(model_dir, device_map="cpu", **_dtype_argument("auto"))
    return dict(model.state_dict())


def _cast(state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {key: value.to(dtype) if torch.is_floating_point(value) else value for key, value in state_dict.items()}


def build_model(config: PretrainedConfig, state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype) -> Any:
    """Instantiate the model on the meta device and adopt ``state_dict``; every weight must be provided."""
    model_class = model_class_for(config)
    with torch.device("meta"):
        model = model_class._from_config(config, **_dtype_argument(dtype))
    result = model.load_state_dict(_cast(state_dict, dtype), strict=False, assign=True)
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


def _replace_directory(staging: Path, target: Path, overwrite: bool) -> None:
    if target.exists():
        if not overwrite:
            shutil.rmtree(staging, ignore_errors=True)
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        retired = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, retired)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)


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
    """Save ``state_dict`` as a Hugging Face model directory at ``out_dir`` and return its path.

    ``processing_class`` (a processor or tokenizer object) is saved with ``save_pretrained``; alternatively
    ``copy_files_from`` names a folder (EasyR1's ``actor/huggingface``) whose tokenizer/processor files are
    copied byte for byte. ``generation_config`` is kept as given (as EasyR1's merger does since #11007).
    ``dtype`` defaults to bfloat16, what EasyR1's merger writes and vLLM serves.
    """
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
    _replace_directory(staging, target, overwrite)
    return target
