"""The global index space as the ``datasets.Dataset`` TRL's ``GRPOTrainer`` reads.

Row ``i`` is ``data.records[i]`` (the curriculum core's global index space), so the plan's indices are row numbers
and no re-indexing can drift. Columns:

* ``prompt``: one user turn in TRL's conversational format. The content is a list of blocks: the problem split at
  its ``<image>`` placeholders with an image block at each (the images stay where the data put them), then the
  paper's format instruction (:data:`PAPER_INSTRUCTION`). TRL fills the image blocks from ``images``.
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

from vlm_capcurriculum.schema import IMAGE_PLACEHOLDER, SampleRecord

#: The paper's format instruction, appended to every problem. Source: UCSC-VLAA/VLM-CapCurriculum
#: ``training/format_prompts/math.jinja`` (``{{ content | trim }} You FIRST think ...``; its ``<thinking>`` in the
#: example is as in the original). The verl writer appends the same text.
PAPER_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in "
    "\\boxed{}. i.e. <thinking> reasoning here </thinking> \\boxed{final answer here}"
)

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


def prompt_blocks(problem: str, instruction: str = PAPER_INSTRUCTION) -> list[dict[str, str | None]]:
    """The user turn's content blocks: text pieces with an image block at every ``<image>``, then the instruction
    (the math.jinja template: ``content | trim``, a space, the instruction)."""
    pieces = problem.strip().split(IMAGE_PLACEHOLDER)
    blocks: list[dict[str, str | None]] = []
    for position, piece in enumerate(pieces):
        if position > 0:
            blocks.append({"type": "image", "text": None})
        if position == len(pieces) - 1:
            piece = f"{piece} {instruction}" if piece else instruction
        if piece:
            blocks.append({"type": "text", "text": piece})
    return blocks


def record_row(
    index: int, record: SampleRecord, image_paths: Sequence[Path], instruction: str = PAPER_INSTRUCTION
) -> dict[str, Any]:
    """One dataset row (see the module docstring)."""
    return {
        "index": index,
        "id": record.id,
        "prompt": [{"role": "user", "content": prompt_blocks(record.problem, instruction)}],
        "images": [str(path) for path in image_paths],
        "ground_truth": record.ground_truth(),
        "answer_type": record.answer_type,
        "capability": record.capability,
    }


def build_dataset(
    records: Sequence[SampleRecord], image_paths: Any, *, instruction: str = PAPER_INSTRUCTION
) -> Dataset:
    """The dataset of ``records`` (row ``i`` = ``records[i]``); ``image_paths(i)`` gives record ``i``'s image files
    (``CurriculumData.image_paths`` for the training data)."""
    rows = [record_row(i, record, image_paths(i), instruction) for i, record in enumerate(records)]
    if not rows:
        return Dataset.from_dict({name: [] for name in FEATURES}, features=FEATURES)
    return Dataset.from_list(rows, features=FEATURES)
