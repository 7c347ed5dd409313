"""Building blocks for the InternVL lane tests: tiny InternVL3/3.5 saved as the -hf checkpoints are, their inputs,
and the scenarios that run in fresh interpreters (the vLLM stand-in) or on several gloo ranks.

The tiny models come from ``vlm_capcurriculum.models`` (real classes, tokenizer, chat template, GotOcr2 image
processor, ``InternVLProcessor``). One setting is made as the published checkpoints have it: their
``preprocessor_config.json`` says ``crop_to_patches: false`` and ``InternVLProcessor`` turns tiling on in its own call;
that split is what EasyR1's bare ``image_processor`` call trips over, so the lane keeps it.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from PIL import Image

FAMILIES = ("internvl3", "internvl3_5")
# Non-square sizes, so that tiling gives several tiles (plus InternVL's thumbnail) with the tiny 56 px tiles.
IMAGE_SIZES = ((120, 60), (60, 170), (56, 56))


def save_model_dir(family: str, path: Path, seed: int = 0) -> Path:
    from vlm_capcurriculum.models import build_tiny
    from vlm_capcurriculum.models.processors import save_processor

    model, processor = build_tiny(family, seed=seed)
    processor.image_processor.crop_to_patches = False  # as OpenGVLab/InternVL3*-hf preprocessor_config.json
    model.save_pretrained(path)
    save_processor(processor, path)
    return path


def load(path: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForImageTextToText

    from vlm_capcurriculum.models import register_processors

    register_processors()
    from verl.utils.tokenizer import get_processor  # EasyR1's loader

    model = AutoModelForImageTextToText.from_pretrained(path, attn_implementation="sdpa").float()
    return model, get_processor(str(path), use_fast=True)


def write_images(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, (width, height) in enumerate(IMAGE_SIZES):
        name = f"image{index}.png"
        pixels = torch.Generator().manual_seed(index)
        colour = tuple(int(value) for value in torch.randint(0, 255, (3,), generator=pixels))
        Image.new("RGB", (width, height), colour).save(folder / name)
        names.append(name)
    return names


def write_dataset(folder: Path) -> Path:
    """A jsonl in EasyR1's format: one image per row, in the folder's images/ (``data.image_dir``)."""
    names = write_images(folder / "images")
    rows = [
        {"problem": f"<image>What is shown in picture {i}?", "answer": "A", "images": [name]}
        for i, name in enumerate(names)
    ]
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def image_batch(
    processor: Any, size: tuple[int, int], text: str = "What is it?", seed: int = 1
) -> dict[str, torch.Tensor]:
    """One image prompt processed as EasyR1's dataset does (the processor's own call: tiling on), with labels."""
    generator = torch.Generator().manual_seed(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in torch.randint(0, 255, (3,), generator=generator)))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = dict(processor([image], [prompt + "It is a picture."], add_special_tokens=False, return_tensors="pt"))
    inputs["labels"] = inputs["input_ids"].clone()
    return inputs


def text_batch(processor: Any, text: str = "What is two plus two?") -> dict[str, torch.Tensor]:
    messages = [{"role": "user", "content": text}]
    prompt = processor.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = dict(processor.tokenizer([prompt + "Four."], add_special_tokens=False, return_tensors="pt"))
    inputs["labels"] = inputs["input_ids"].clone()
    return inputs


# --- scenarios run on two gloo ranks (module level: spawned processes import them) ------------------------------


def mixed_micro_batch_scenario(rank: int, world_size: int, model_dir: str, out_dir: str) -> None:
    """Rank 0 trains on an image prompt, rank 1 on a text-only one, FSDP-wrapped as EasyR1 wraps InternVL with our
    fixes. Without the dummy vision forward rank 1 skips the tower's all-gathers and the collectives mismatch."""
    import easyr1_lane as lane
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from vlm_capcurriculum.integrations.easyr1 import internvl

    model, processor = load(Path(model_dir))
    prepared = internvl.prepare_model(model, freeze=False)
    fsdp_module = lane.wrap_fsdp(model, use_orig_params=True, param_dtype=torch.float32)
    units = sorted({type(module.module).__name__ for module in fsdp_module.modules() if isinstance(module, FSDP)})
    actor, _, scheduler = lane.build_actor(fsdp_module)
    batch = image_batch(processor, (120, 60)) if rank == 0 else text_batch(processor)
    before = lane.full_state(fsdp_module)
    grad_norms = [lane.train_step(actor, scheduler, batch) for _ in range(2)]
    after = lane.full_state(fsdp_module)
    dist.barrier()
    if rank == 0:
        changed = {key for key in before if not torch.equal(before[key], after[key])}
        torch.save(
            {"prepared": prepared, "units": units, "grad_norms": grad_norms, "changed": changed, "keys": list(before)},
            Path(out_dir) / "results.pt",
        )


# --- scenario run in a fresh interpreter (the vLLM stand-in: fsdp_workers imports vLLM) ------------------------


def worker_inputs_scenario(model_dir: str, data_dir: str) -> dict[str, Any]:
    """Prompts as EasyR1's RLHFDataset renders them vs. the training inputs of ``_process_multi_modal_inputs``, once
    through EasyR1's ``FSDPWorker`` and once through our ``CurriculumFSDPWorker``; then the model on each pair."""
    import numpy as np
    from verl.protocol import DataProto
    from verl.utils.dataset import RLHFDataset
    from verl.workers.fsdp_workers import FSDPWorker

    from vlm_capcurriculum.integrations.easyr1.worker import CurriculumFSDPWorker

    model, processor = load(Path(model_dir))
    dataset = RLHFDataset(
        str(Path(data_dir) / "train.jsonl"),
        processor.tokenizer,
        processor,
        prompt_key="problem",
        image_dir=str(Path(data_dir) / "images"),
        max_prompt_length=1024,
        filter_overlong_prompts=False,
    )
    rows = [dataset[index] for index in range(len(dataset))]
    image_token = model.config.image_token_id
    prompt_tokens = [int((row["input_ids"] == image_token).sum()) for row in rows]
    results: dict[str, Any] = {"prompt_tokens": prompt_tokens}
    for name, cls in (("stock", FSDPWorker), ("ours", CurriculumFSDPWorker)):
        worker = object.__new__(cls)  # only what _process_multi_modal_inputs reads
        worker.processor, worker._cache = processor, {}
        data = DataProto.from_dict(
            non_tensors={
                "uid": np.array([str(index) for index in range(len(rows))], dtype=object),
                "multi_modal_data": np.array([row["multi_modal_data"] for row in rows], dtype=object),
            },
            meta_info={"min_pixels": None, "max_pixels": None, "video_fps": 2.0},
        )
        worker._process_multi_modal_inputs(data)
        inputs = list(data.non_tensor_batch["multi_modal_inputs"])
        features_per_tile = model.config.image_seq_length
        outcome = {
            "keys": sorted(inputs[0]),
            "feature_tokens": [int(item["pixel_values"].shape[0]) * features_per_tile for item in inputs],
            "processor_restored": worker.processor is processor,
            "forward": [],
        }
        for row, item in zip(rows, inputs, strict=True):
            mask = row["attention_mask"].bool()
            try:
                with torch.no_grad():
                    model(input_ids=row["input_ids"][mask][None], **item)
                outcome["forward"].append("ok")
            except ValueError as error:
                outcome["forward"].append(str(error).splitlines()[0])
        results[name] = outcome
    return results


# --- padding-free: packed (EasyR1's varlen attention, by position ids) vs. one sequence at a time ----------------


def _varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                      softmax_scale=None, causal=True, **_: Any):  # type: ignore[no-untyped-def]  # fmt: skip
    """flash_attn_varlen_func's contract in plain torch (the lane has no flash-attn): causal attention inside each
    ``cu_seqlens`` segment of the packed (tokens, heads, dim) tensors, grouped-query heads repeated."""
    assert torch.equal(cu_seqlens_q, cu_seqlens_k) and dropout_p == 0.0
    out = []
    bounds = cu_seqlens_q.tolist()
    for start, end in itertools.pairwise(bounds):
        query, key, value = (t[start:end].transpose(0, 1) for t in (q, k, v))  # (heads, length, dim)
        repeat = query.size(0) // key.size(0)
        key, value = key.repeat_interleave(repeat, 0), value.repeat_interleave(repeat, 0)
        out.append(
            torch.nn.functional.scaled_dot_product_attention(
                query, key, value, is_causal=causal, scale=softmax_scale
            ).transpose(0, 1)
        )
    return torch.cat(out)


def padding_free_scenario(model_dir: str) -> dict[str, Any]:
    """Two image prompts of different tile counts and one text-only prompt: next-token log-probs of the packed
    forward (what ``DataParallelPPOActor`` runs with ``padding_free``) against each sequence alone."""
    import verl.models.transformers.flash_attention_utils as fa
    from transformers import AutoConfig
    from verl.models.monkey_patch import apply_ulysses_patch

    from vlm_capcurriculum.integrations.easyr1 import internvl

    text_type = AutoConfig.from_pretrained(model_dir).get_text_config().model_type
    internvl.padding_free_patch(apply_ulysses_patch, lambda: text_type)("internvl")
    fa.flash_attn_varlen_func = _varlen_attention
    fa._flash_supports_window_size = fa._flash_supports_deterministic = fa._flash_use_top_left_mask = False
    model, processor = load(Path(model_dir))
    model.to(torch.bfloat16)  # as FSDP's mixed precision runs it (flash attention works in bf16)
    batches = [image_batch(processor, (120, 60), seed=1), text_batch(processor), image_batch(processor, (56, 56))]
    alone = []
    with torch.no_grad():
        for batch in batches:
            inputs = {key: value for key, value in batch.items() if key != "labels"}
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
            alone.append(torch.log_softmax(model(**inputs).logits[0].float(), -1))
        model.config.get_text_config()._attn_implementation = "flash_attention_2"  # the LM only, as EasyR1 loads it
        input_ids = torch.cat([batch["input_ids"][0] for batch in batches])[None]
        position_ids = torch.cat([torch.arange(batch["input_ids"].size(1)) for batch in batches])[None]
        pixel_values = torch.cat([batch["pixel_values"] for batch in batches if "pixel_values" in batch])
        pixel_values = pixel_values.to(torch.bfloat16)
        packed = torch.log_softmax(
            model(input_ids=input_ids, position_ids=position_ids, pixel_values=pixel_values, use_cache=False)
            .logits[0]
            .float(),
            -1,
        )
    reference = torch.cat(alone)
    labels = input_ids[0].roll(-1)
    return {
        "max_abs_diff": float((packed - reference).abs().max()),
        "label_logprob_diff": float(
            (packed.gather(-1, labels[:, None]) - reference.gather(-1, labels[:, None])).abs().max()
        ),
        "tokens": int(input_ids.size(1)),
        "attention": model.config.get_text_config()._attn_implementation,
    }
