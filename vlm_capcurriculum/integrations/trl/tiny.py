"""Tiny models as a recipe's model: ``model.path: tiny://<family>`` (the CPU quick start and the tests).

``tiny://qwen3_vl`` is built with :func:`vlm_capcurriculum.models.save_tiny` into ``<output_dir>/base_model`` (reused
when it is already there, e.g. on resume), so the run has what TRL needs: a model directory to rebuild the KL
reference from, and a processor to save with every stage checkpoint.

**Format warm-start.** A randomly initialised model never writes the paper's answer format, so every completion
scores 0, every GRPO advantage is 0 and nothing is learned: a quick start that trains nothing, and tests that
cannot see a policy-gradient update. With ``model.tiny_warm_start_steps > 0`` the tiny model is first taught the
format by that many steps of supervised fine-tuning on the training records' gold answers written as
``<think> </think> \\boxed{answer}`` (the role the instruction tuning of a real checkpoint plays). A few dozen steps
give a model that mostly keeps the format and answers more or less at random, so rewards vary within a group, as
with a real instruct model. The warmed-up weights are what ``base_model`` holds: the KL reference is that model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from vlm_capcurriculum.models import FAMILIES, load_tiny, save_tiny
from vlm_capcurriculum.schema import SampleRecord

from .dataset import record_row

logger = logging.getLogger(__name__)


class TinyModelError(ValueError):
    """A ``tiny://`` path that names no family, or an output directory holding a differently built tiny model."""


TINY_SCHEME = "tiny://"
BASE_MODEL_DIR = "base_model"
_READY = "vlmcc_tiny.json"


def tiny_family(path: str) -> str | None:
    """The family of a ``tiny://<family>`` path, None for any other path; raises for an unknown family."""
    if not path.startswith(TINY_SCHEME):
        return None
    family = path[len(TINY_SCHEME) :].strip("/")
    if family not in FAMILIES:
        raise TinyModelError(
            f"model.path {path!r}: unknown tiny family {family!r}; expected one of {', '.join(FAMILIES)}"
        )
    return family


def warm_start_target(record: SampleRecord) -> str:
    """The supervised answer of the format warm-start: empty reasoning, the gold answer boxed."""
    return f"<think> </think> \\boxed{{{record.answer}}}"


def format_warm_start(
    model: torch.nn.Module,
    processor: object,
    records: Sequence[SampleRecord],
    image_paths: Callable[[int], Sequence[Path]],
    *,
    steps: int,
    batch_size: int = 8,
    lr: float = 3e-3,
    seed: int = 0,
    template: str | None = None,
) -> list[float]:
    """Supervised steps on ``prompt -> <think> </think> \\boxed{answer}<eos>`` (loss on the answer only); returns
    the losses. Runs under its own RNG so the caller's random state is untouched. Needs only transformers (the
    prompt is the processor's chat template, as TRL renders it), so the EasyR1 lane warm-starts with it too."""
    from PIL import Image

    tokenizer = processor.tokenizer  # type: ignore[attr-defined]
    end = tokenizer.eos_token or ""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses: list[float] = []
    model.train()
    with torch.random.fork_rng(devices=[]):
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            picks = torch.randint(len(records), (batch_size,), generator=generator).tolist()
            rows = [record_row(i, records[i], image_paths(i), template) for i in picks]
            images = [[Image.open(path).convert("RGB") for path in row["images"]] or None for row in rows]
            prompts = [
                processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined]
                for row in rows
            ]
            targets = [warm_start_target(records[i]) + end for i in picks]
            has_images = any(images)
            kwargs = {"images": images if has_images else None, "padding": True, "return_tensors": "pt"}
            full = processor(
                text=[p + t for p, t in zip(prompts, targets, strict=True)], padding_side="right", **kwargs
            )
            prompt_only = processor(text=prompts, padding_side="right", **kwargs)
            labels = full["input_ids"].clone()
            labels[full["attention_mask"] == 0] = -100
            for row, length in enumerate(prompt_only["attention_mask"].sum(dim=1).tolist()):
                labels[row, :length] = -100
            loss = model(**full, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.eval()
    return losses


def prepare_tiny_model(
    family: str,
    output_dir: str | Path,
    *,
    seed: int = 0,
    warm_start_steps: int = 0,
    records: Sequence[SampleRecord] = (),
    image_paths: Callable[[int], Sequence[Path]] | None = None,
    template: str | None = None,
) -> Path:
    """Build (or reuse) ``<output_dir>/base_model`` for a ``tiny://`` path; returns the directory."""
    import json

    path = Path(output_dir) / BASE_MODEL_DIR
    recipe = {"family": family, "seed": seed, "warm_start_steps": warm_start_steps, "records": len(records)}
    ready = path / _READY
    if ready.is_file():
        if json.loads(ready.read_text()) != recipe:
            raise TinyModelError(
                f"{path} holds a tiny model built differently ({ready.read_text().strip()}; asked: {recipe}): "
                "use a fresh output directory"
            )
        return path
    print(f"TRL: building a tiny random {family} model (seed {seed}) in {path}", flush=True)
    save_tiny(family, path, seed=seed)
    if warm_start_steps > 0:
        if image_paths is None or not records:
            raise TinyModelError("the format warm-start needs the training records")
        model, processor = load_tiny(path)
        losses = format_warm_start(
            model, processor, records, image_paths, steps=warm_start_steps, seed=seed, template=template
        )
        print(
            f"TRL: tiny {family} model: format warm-start ({warm_start_steps} supervised steps on the boxed gold "
            f"answers, model.tiny_warm_start_steps): loss {losses[0]:.3f} -> {losses[-1]:.3f}",
            flush=True,
        )
        model.save_pretrained(path)
    ready.write_text(json.dumps(recipe) + "\n")
    return path
