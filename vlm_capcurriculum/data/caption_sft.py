"""The caption-SFT dataset of the paper's SFT-versus-RL perception ablation (Table 6): each image, an instruction to
describe it in detail (``prompts/caption_instruction.txt``), and its human caption as the target. Two chat-JSONL
layouts (examples in ``data_recipes/README.md``): ``trl`` (TRL ``SFTTrainer``'s conversational prompt-completion, so
the loss is on the caption only) and ``llamafactory`` (its ShareGPT-style multimodal layout, with the
``dataset_info.json`` entry; the reference ran LLaMA-Factory full fine-tuning of Qwen3-VL-8B on DOCCI captions,
``training/examples/ablations/qwen3_vl_8b_sft_perception_then_stage23.sh``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.captions import Caption
from vlm_capcurriculum.data.inputs import BadRow
from vlm_capcurriculum.data.io import AtomicJsonlWriter
from vlm_capcurriculum.data.prompting import PromptTemplate

FORMATS = ("trl", "llamafactory")


def sft_row(caption: Caption, instruction: str, fmt: str, image: str) -> dict[str, Any]:
    if fmt == "trl":
        return {
            "id": caption.id,
            "images": [image],
            "prompt": [{"role": "user", "content": instruction}],
            "completion": [{"role": "assistant", "content": caption.caption}],
        }
    return {
        "id": caption.id,
        "messages": [
            {"role": "user", "content": "<image>" + instruction},
            {"role": "assistant", "content": caption.caption},
        ],
        "images": [image],
    }


@dataclass
class CaptionSFTSummary:
    written: int = 0
    bad: Counter[str] = field(default_factory=Counter)
    outputs: dict[str, str] = field(default_factory=dict)


def write_caption_sft(
    items: Iterable[Caption | BadRow],
    output: str | os.PathLike[str],
    *,
    fmt: str = "trl",
    instruction: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    absolute_images: bool = False,
) -> CaptionSFTSummary:
    """Write one SFT row per good caption (atomically); bad rows go to ``OUTPUT.issues.jsonl`` with file, line and
    field."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown caption-SFT format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if absolute_images and image_root is None:
        raise ValueError("absolute image paths need the image root")
    if instruction is None:
        instruction = PromptTemplate.packaged("caption_instruction.txt").fill()
    output = Path(output)
    issues_path = output.with_suffix(".issues.jsonl")
    summary = CaptionSFTSummary()
    seen: Counter[str] = Counter()
    with AtomicJsonlWriter(output) as rows, AtomicJsonlWriter(issues_path) as bad:
        for item in items:
            if isinstance(item, BadRow):
                for field_name, message in item.problems:
                    bad.write({"location": str(item.location), "field": field_name, "message": message})
                summary.bad[item.problems[0][0] if item.problems else "<row>"] += 1
                continue
            seen[item.id] += 1
            if seen[item.id] > 1:
                bad.write({"location": str(item.location), "field": "id", "message": f"duplicate id {item.id!r}"})
                summary.bad["duplicate_id"] += 1
                continue
            image = str((Path(image_root) / item.image).absolute()) if absolute_images and image_root else item.image
            rows.write(sft_row(item, instruction, fmt, image))
            summary.written += 1
    summary.outputs = {"output": str(output), "issues": str(issues_path)}
    if fmt == "llamafactory":
        info = output.with_name("dataset_info.json")
        entries: dict[str, Any] = {}
        if info.exists():  # LLaMA-Factory keeps every dataset in one file: add ours, keep the others
            try:
                entries = json.loads(info.read_text(encoding="utf-8"))
            except ValueError as err:
                raise ValueError(f"{info}: not valid JSON ({err}); fix or remove it") from None
            if not isinstance(entries, dict):
                raise ValueError(f"{info}: expected a JSON object of datasets")
        entries[output.stem] = {  # what makes LLaMA-Factory read the rows above
            "file_name": output.name,
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
        }
        info.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        summary.outputs["dataset_info"] = str(info)
    return summary
