"""EasyR1's dataset and loader over the curriculum: ``RLHFDataset`` + our sampler, as ``create_dataloader`` builds them.

No hook in EasyR1: ``create_dataloader`` hard-codes a random or sequential sampler, so we build the same loader with
:class:`~vlm_capcurriculum.curriculum.CurriculumSampler` (the ``i``-th batch is global step ``i + 1``). EasyR1's
overlong filter would shift every later index, so :func:`drop_overlong_prompts` runs it once before the plan is built.
"""

from __future__ import annotations

from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader
from verl.utils.dataset import RLHFDataset, collate_fn
from verl.utils.tokenizer import get_processor, get_tokenizer

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.curriculum import CurriculumData, CurriculumSampler, Plan
from vlm_capcurriculum.curriculum.data import without_records

from .records import ANSWER_KEY, IMAGE_KEY, INDEX_KEY, PROMPT_KEY, write_train_file

#: ``create_dataloader``'s worker count (EasyR1 @ b44b311 hard-codes it).
EASYR1_NUM_WORKERS = 8


def rlhf_dataset(config: Any, tokenizer: Any, processor: Any, data_path: str, *, filter_overlong: bool) -> Any:
    """``RLHFDataset`` with the keyword arguments ``create_dataloader`` passes (``filter_overlong`` aside)."""
    data = config.data
    return RLHFDataset(
        data_path=data_path,
        tokenizer=tokenizer,
        processor=processor,
        prompt_key=data.prompt_key,
        answer_key=data.answer_key,
        image_key=data.image_key,
        video_key=data.video_key,
        image_dir=data.image_dir,
        video_fps=data.video_fps,
        max_prompt_length=data.max_prompt_length,
        truncation="right",
        format_prompt=data.format_prompt,
        min_pixels=data.min_pixels,
        max_pixels=data.max_pixels,
        filter_overlong_prompts=filter_overlong,
        filter_overlong_prompts_workers=data.filter_overlong_prompts_workers,
    )


def use_our_columns(config: Any) -> None:
    """Point EasyR1's column keys at the columns :mod:`.records` writes."""
    config.data.prompt_key, config.data.answer_key, config.data.image_key = PROMPT_KEY, ANSWER_KEY, IMAGE_KEY


def drop_overlong_prompts(
    config: Any, tokenizer: Any, processor: Any, data: CurriculumData, train_file: str
) -> tuple[CurriculumData, int]:
    """Apply EasyR1's overlong-prompt filter (if ``data.filter_overlong_prompts``) to the written file; returns the
    data without the dropped records (the file is rewritten to match) and how many were dropped."""
    if not config.data.filter_overlong_prompts:
        return data, 0
    filtered = rlhf_dataset(config, tokenizer, processor, train_file, filter_overlong=True)
    kept = set(filtered.dataset[INDEX_KEY])
    dropped = [index for index in range(len(data)) if index not in kept]
    if not dropped:
        return data, 0
    data = without_records(data, dropped)
    if not len(data):
        raise ConfigError(
            f"every training prompt is longer than data.max_prompt_length={config.data.max_prompt_length} tokens"
        )
    write_train_file(data, train_file)
    return data, len(dropped)


def train_dataloader(config: Any, tokenizer: Any, processor: Any, plan: Plan, train_file: str) -> Any:
    """The training loader: the plan's samples in the plan's order, one batch per global step."""
    dataset = rlhf_dataset(config, tokenizer, processor, train_file, filter_overlong=False)
    if len(dataset) != plan.dataset_size:
        raise ConfigError(
            f"{train_file} holds {len(dataset)} rows but the plan's global index space has {plan.dataset_size}: "
            "the data file and the plan are out of step (rewrite it by restarting the launcher)"
        )
    sampler = CurriculumSampler(plan)  # at step 0: dataloader.pt or the trainer's resume sets its position
    return StatefulDataLoader(dataset, plan.batch_size, sampler=sampler, num_workers=EASYR1_NUM_WORKERS,
                              collate_fn=collate_fn, drop_last=True)  # fmt: skip


def val_dataloader(config: Any, tokenizer: Any, processor: Any, num_workers: int = EASYR1_NUM_WORKERS) -> Any:
    """The validation loader exactly as ``create_dataloader`` builds it, over ``data.val_files``."""
    dataset = rlhf_dataset(
        config, tokenizer, processor, config.data.val_files, filter_overlong=config.data.filter_overlong_prompts
    )
    if len(dataset) == 0:
        raise ConfigError(f"data.val_files={config.data.val_files}: no validation prompt is left")
    batch_size = len(dataset) if config.data.val_batch_size == -1 else config.data.val_batch_size
    return StatefulDataLoader(dataset, batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate_fn)


def load_tokenizer_and_processor(config: Any) -> tuple[Any, Any]:
    """EasyR1's ``get_tokenizer``/``get_processor`` with the arguments ``verl.trainer.main.Runner`` passes."""
    model = config.worker.actor.model
    kwargs = {
        "override_chat_template": config.data.override_chat_template,
        "trust_remote_code": model.trust_remote_code,
    }
    try:
        tokenizer = get_tokenizer(model.model_path, use_fast=True, **kwargs)
        processor = get_processor(model.model_path, use_fast=True, **kwargs)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"worker.actor.model.model_path: cannot load the tokenizer/processor of {model.model_path!r}: {first}"
        ) from error
    return tokenizer, processor
