"""The curriculum dataset for verl 0.9.1 (``data.custom_cls``): verl's ``RLHFDataset`` in the plan's order.

verl 0.9 dropped its curriculum sampler hook and the v1 trainer builds its own sequential loader, so the order lives
in the dataset: the concatenated ``data.train_files`` re-indexed by the plan (``dataframe.select(order)``; stage
epochs repeat rows). The dataloader state verl checkpoints is then the rows consumed, so a resumed run continues at
the same row. Validation files (the same class) keep their order. Rows dropped while loading (``max_samples``,
``filter_overlong_prompts``) would shift every later index, so they are refused.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import datasets
import pyarrow.parquet as pq
from omegaconf import DictConfig, ListConfig
from verl.utils.dataset.rl_dataset import RLHFDataset

from .planning import training_order

logger = logging.getLogger(__name__)


class CurriculumDataError(ValueError):
    """The training files and the curriculum order do not fit together."""


def _as_list(files: Any) -> list[str]:
    if isinstance(files, (list, tuple, ListConfig)):
        return [str(f) for f in files]
    return [str(files)]


def count_rows(path: str) -> int:
    """Rows in a parquet (from its footer) or JSON/JSONL file, as ``RLHFDataset`` reads it."""
    if path.endswith(".parquet"):
        return pq.ParquetFile(path).metadata.num_rows
    return len(datasets.load_dataset("json", data_files=path)["train"])


def _image_of(item: dict[str, Any]) -> Any:
    """One ``{"type": "image", "image": ...}`` entry (path, ``{"bytes"/"path"}`` or PIL) as an RGB PIL image. Not
    resized: the processor resizes it within ``data.mm_processor_kwargs``' pixel bounds, on the rollout and the
    training side alike."""
    from io import BytesIO

    from PIL import Image

    source = item.get("image", item.get("image_url"))
    if isinstance(source, dict):
        source = BytesIO(source["bytes"]) if source.get("bytes") is not None else source.get("path")
    image = source if isinstance(source, Image.Image) else Image.open(source)
    return image.convert("RGB")


def images_of_messages(messages: list[dict], image_patch_size: int) -> list[Any] | None:
    """The images of chat ``messages``, in order, as RGB PIL images (what ``qwen_vl_utils.process_vision_info``
    returns, without its resize), for where ``qwen_vl_utils`` cannot be imported: it imports torchvision at module top, and
    torchvision has no CPU-only build for every torch. Videos are refused."""
    images = []
    for message in messages:
        content = message.get("content")
        for item in content if isinstance(content, list) else []:
            if isinstance(item, dict) and item.get("type") == "video":
                raise ValueError("video inputs need qwen_vl_utils (and torchvision)")
            if isinstance(item, dict) and item.get("type") == "image":
                images.append(_image_of(item))
    return images or None


def _qwen_vl_utils_available() -> bool:
    """Whether ``qwen_vl_utils`` and the torchvision it imports are installed (found, not imported: the agent loop
    calls this from several threads, and a failing import seen half-done by another thread looks like success)."""
    return all(importlib.util.find_spec(name) is not None for name in ("qwen_vl_utils", "torchvision"))


class _VisionWithoutTorchvision:
    """``RLHFDataset``'s two vision readers, falling back to :func:`images_of_messages` without ``qwen_vl_utils``."""

    @classmethod
    async def process_vision_info(cls, messages: list[dict], image_patch_size: int, config: Any = None) -> Any:
        if _qwen_vl_utils_available():
            return await RLHFDataset.process_vision_info.__func__(cls, messages, image_patch_size, config)
        return images_of_messages(messages, image_patch_size), None

    @classmethod
    def _process_multi_modal_info(cls, messages: list[dict], image_patch_size: Any, config: Any) -> Any:
        if _qwen_vl_utils_available():
            return RLHFDataset._process_multi_modal_info.__func__(cls, messages, image_patch_size, config)
        return images_of_messages(messages, image_patch_size), None, cls._extract_audio_info(messages)


class FilesOrderRLDataset(_VisionWithoutTorchvision, RLHFDataset):
    """``RLHFDataset`` reading images as :class:`CurriculumRLDataset` does, rows in the files' order (the launcher
    measures prompt lengths with it: the same images the agent loop will render)."""


class CurriculumRLDataset(_VisionWithoutTorchvision, RLHFDataset):
    """``RLHFDataset`` whose training rows follow the curriculum plan (see the module docstring)."""

    def __init__(
        self,
        data_files: str | list[str],
        tokenizer: Any,
        config: DictConfig,
        processor: Any = None,
        max_samples: int = -1,
    ) -> None:
        self.is_train = _as_list(data_files) == _as_list(config.get("train_files"))
        self.order: list[int] | None = None
        super().__init__(data_files, tokenizer, config, processor, max_samples)

    def _read_files_and_tokenize(self) -> None:
        """verl's loading (read, concatenate, max_samples, length filter), then the plan's order for training."""
        super()._read_files_and_tokenize()
        curriculum = self.config.get("curriculum")
        if not self.is_train:
            return
        if curriculum is None:
            logger.warning("data.curriculum is not set: training rows keep the files' order")
            return
        files = list(self.data_files)
        total = sum(count_rows(path) for path in files)
        if len(self.dataframe) != total:
            raise CurriculumDataError(
                f"{total - len(self.dataframe)} of {total} training rows were dropped while loading "
                f"(data.train_max_samples / data.filter_overlong_prompts); the curriculum order indexes the files as "
                "written: filter when writing the files instead"
            )
        order = training_order(curriculum, files)
        batch_size = self.config.get("train_batch_size")
        if batch_size and len(order) % batch_size:
            raise CurriculumDataError(
                f"the curriculum order holds {len(order)} rows, not a multiple of data.train_batch_size={batch_size}: "
                "the data loader would drop the last partial batch"
            )
        self.order = order
        self.dataframe = self.dataframe.select(order)
