"""The global index space as the ``datasets.Dataset`` TRL's ``GRPOTrainer`` reads: row ``i`` is ``data.records[i]``
(the ``index`` column lets the trainer check each generation batch against the plan). ``prompt`` is one user turn in
TRL's conversational format, the format prompt split at its ``<image>`` placeholders; TRL passes the other columns to
the reward functions. Pixel bounds apply as EasyR1's ``data.{min,max}_pixels``: to the decoded image, keeping its
aspect ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from datasets import Dataset, Features, Image, List, Value

from vlm_capcurriculum.prompts import prompt_blocks, render_prompt
from vlm_capcurriculum.schema import SampleRecord

FEATURES = Features(
    {
        "index": Value("int64"),
        "id": Value("string"),
        "prompt": List({"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}),
        "images": List(Image()),
        "ground_truth": Value("string"),
        "answer_type": Value("string"),
        "capability": Value("string"),
    }
)


def build_dataset(records: Sequence[SampleRecord], image_paths: Any, *, template: str | None = None) -> Dataset:
    """``image_paths(i)`` gives record ``i``'s image files; ``template`` is a format prompt's text (None: the default)."""
    rows = [
        {
            "index": i,
            "id": record.id,
            "prompt": [{"role": "user", "content": prompt_blocks(render_prompt(record.problem, template))}],
            "images": [str(path) for path in image_paths(i)],
            "ground_truth": record.ground_truth(),
            "answer_type": record.answer_type,
            "capability": record.capability,
        }
        for i, record in enumerate(records)
    ]
    if not rows:
        return Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES)
    return Dataset.from_list(rows, features=FEATURES)


def bound_pixels(image: Any, min_pixels: int | None, max_pixels: int | None) -> Any:
    """``image`` (PIL) scaled so that width x height lies in [min_pixels, max_pixels] (a bound may be None), RGB."""
    from PIL import Image as PILImage

    for bound, too_far in ((max_pixels, lambda area, b: area > b), (min_pixels, lambda area, b: area < b)):
        area = image.width * image.height
        if bound is not None and too_far(area, bound):
            scale = math.sqrt(bound / area)
            size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
            image = image.resize(size, resample=PILImage.Resampling.BILINEAR)
    return image if image.mode == "RGB" else image.convert("RGB")


def with_pixel_bounds(dataset: Dataset, min_pixels: int | None, max_pixels: int | None) -> Dataset:
    """``dataset`` whose ``images`` come back bounded (:func:`bound_pixels`) whenever rows or columns are read."""
    if min_pixels is None and max_pixels is None:
        return dataset

    def transform(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if "images" in batch:
            batch["images"] = [[bound_pixels(i, min_pixels, max_pixels) for i in row] for row in batch["images"]]
        return batch

    return dataset.with_transform(transform)


def prompt_text(prompt: Any, images: Sequence[Any] | None, processor: Any, **chat_template_kwargs: Any) -> str:
    """A row's prompt as the text ``GRPOTrainer`` gives the processor (TRL's chat template over its messages)."""
    from trl.data_utils import apply_chat_template, prepare_multimodal_messages

    messages = prepare_multimodal_messages(prompt, images=list(images) if images else None)
    return apply_chat_template({"prompt": messages}, processor, **chat_template_kwargs)["prompt"]


def prompt_lengths(dataset: Dataset, processor: Any, chat_template_kwargs: dict[str, Any] | None = None) -> list[int]:
    """Tokens of each row's prompt as ``GRPOTrainer`` builds it (chat template, then the processor with the row's
    images, so image tokens count): the length EasyR1's ``filter_overlong_prompts`` compares with the limit."""
    lengths = []
    for row in dataset:
        images = list(row["images"]) or None
        text = prompt_text(row["prompt"], images, processor, **(chat_template_kwargs or {}))
        inputs = processor(text=[text], images=[images] if images else None, return_tensors="pt")
        lengths.append(int(inputs["input_ids"].shape[1]))
    return lengths
