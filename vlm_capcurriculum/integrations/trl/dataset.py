"""The global index space as the ``datasets.Dataset`` TRL's ``GRPOTrainer`` reads.

Row ``i`` is ``data.records[i]`` (the curriculum core's global index space), so the plan's indices are row numbers
and no re-indexing can drift. Columns:

* ``prompt``: one user turn in TRL's conversational format: the format prompt (a Jinja template with ``content`` =
  the problem, :data:`vlm_capcurriculum.prompts.THINK_BOXED` by default, as EasyR1's ``data.format_prompt``) rendered, then
  split at its ``<image>`` placeholders into text blocks with an image block at each (the images stay where the
  data put them). TRL fills the image blocks from ``images``.
* ``images``: the record's image files, decoded lazily by ``datasets.Image`` (``[]`` for text-only questions; TRL and
  our image-only processors accept batches that mix both).
* ``ground_truth``: :meth:`SampleRecord.ground_truth`, the string every backend's reward reads.
* ``answer_type``, ``capability``, ``id``, ``index``: passed by TRL to the reward functions as keyword arguments;
  ``index`` lets the trainer check that every generation batch is exactly the plan's batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, Image, List, Value

from vlm_capcurriculum.prompts import render_prompt
from vlm_capcurriculum.schema import IMAGE_PLACEHOLDER, SampleRecord

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


def prompt_blocks(text: str) -> list[dict[str, str | None]]:
    """Content blocks of a rendered prompt: text pieces, with an image block at every ``<image>``."""
    blocks: list[dict[str, str | None]] = []
    for position, piece in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if position > 0:
            blocks.append({"type": "image", "text": None})
        if piece:
            blocks.append({"type": "text", "text": piece})
    return blocks


def record_row(
    index: int, record: SampleRecord, image_paths: Sequence[Path], template: str | None = None
) -> dict[str, Any]:
    """One dataset row (see the module docstring); ``template`` is a format prompt's text (None: the default)."""
    return {
        "index": index,
        "id": record.id,
        "prompt": [{"role": "user", "content": prompt_blocks(render_prompt(record.problem, template))}],
        "images": [str(path) for path in image_paths],
        "ground_truth": record.ground_truth(),
        "answer_type": record.answer_type,
        "capability": record.capability,
    }


def build_dataset(records: Sequence[SampleRecord], image_paths: Any, *, template: str | None = None) -> Dataset:
    """The dataset of ``records`` (row ``i`` = ``records[i]``); ``image_paths(i)`` gives record ``i``'s image files
    (``CurriculumData.image_paths`` for the training data); ``template`` is the format prompt."""
    rows = [record_row(i, record, image_paths(i), template) for i, record in enumerate(records)]
    if not rows:
        return Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES)
    return Dataset.from_list(rows, features=FEATURES)
