"""Written files through verl's own ``RLHFDataset`` and ``collate_fn`` with a real (tiny) Qwen2.5-VL processor, and
our curriculum dataset's order and resume under torchdata's ``StatefulDataLoader``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl")

from omegaconf import open_dict
from PIL import Image
from torch.utils.data import SequentialSampler
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn, get_dataset_class
from verl.utils.tokenizer import build_multimodal_processor_inputs
from verl_doubles import reversed_stage_order

from vlm_capcurriculum.integrations.verl.dataset import CurriculumDataError, CurriculumRLDataset
from vlm_capcurriculum.integrations.verl.writer import PAPER_INSTRUCTION

HERE = Path(__file__).parent
STAGES = (
    "[{name: p, file_index: 0, epochs: 2}, {name: t, file_index: 1, epochs: 1}, {name: v, file_index: 2, epochs: 1}]"
)


def _data_config(verl_config: Any, stage_files: dict[str, Path], *extra: str) -> Any:
    train = f"[{stage_files['perception']},{stage_files['text_reasoning']},{stage_files['visual_reasoning']}]"
    config = verl_config(
        [
            f"data.train_files={train}",
            f"data.val_files=[{stage_files['val']}]",
            f"curriculum.order.path={HERE / 'verl_doubles.py'}",
            "curriculum.order.name=reversed_stage_order",
            f"+curriculum.stages={STAGES}",
            *extra,
        ]
    )
    return config.data


def _ids(batch: dict) -> list[str]:
    return [info["id"] for info in batch["extra_info"]]


def test_verls_dataset_loads_images_and_renders_the_prompt(stage_files: dict, tiny_processor: Any, verl_config: Any):
    data_config = _data_config(verl_config, stage_files)
    dataset = RLHFDataset(str(stage_files["perception"]), tiny_processor.tokenizer, data_config, tiny_processor)
    assert len(dataset) == 6
    batch = collate_fn([dataset[0], dataset[1]])
    assert list(batch["data_source"]) == ["perception", "perception"]
    assert batch["reward_model"][0]["style"] == "rule"
    assert batch["extra_info"][0]["capability"] == "perception" and batch["index"][1] == 1

    messages = batch["raw_prompt"][0]
    content = messages[0]["content"]
    assert [item["type"] for item in content] == ["image", "text"]  # <image> became the image, in place
    assert isinstance(content[0]["image"], Image.Image) and content[0]["image"].size == (40, 30)
    assert content[1]["text"].startswith("What colour is the square?") and content[1]["text"].endswith(
        PAPER_INSTRUCTION
    )

    # what verl's agent loop does with raw_prompt: chat template, then the processor on the prompt's images.
    # (verl extracts them with qwen_vl_utils.process_vision_info, which imports torchvision: not installable here,
    # so the images are taken from the messages directly; the Qwen image processor resizes them the same way.)
    images = [item["image"] for item in content if item["type"] == "image"]
    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What colour" in text
    inputs = build_multimodal_processor_inputs(tiny_processor, text=[text], images=images)
    grid = inputs["image_grid_thw"][0]
    image_tokens = int((inputs["input_ids"][0] == tiny_processor.image_token_id).sum())
    assert image_tokens == int(grid.prod()) // 4  # merge size 2 x 2

    text_only = collate_fn(
        [RLHFDataset(str(stage_files["text_reasoning"]), tiny_processor.tokenizer, data_config, tiny_processor)[0]]
    )
    assert text_only["raw_prompt"][0][0]["content"].startswith("Compute 0 + 30.")


def test_length_filter_runs_on_our_text_rows(stage_files: dict, tiny_processor: Any, verl_config: Any) -> None:
    data_config = _data_config(verl_config, stage_files, "data.filter_overlong_prompts=true")
    dataset = RLHFDataset(str(stage_files["text_reasoning"]), tiny_processor.tokenizer, data_config, tiny_processor)
    assert len(dataset) == 4  # verl's length check (chat template + tokenizer) accepts every row


def test_dropped_rows_break_the_order_loudly(stage_files: dict, tiny_processor: Any, verl_config: Any) -> None:
    """verl's length filter drops rows silently (and every image row when qwen_vl_utils cannot import, as here)."""
    data_config = _data_config(
        verl_config, stage_files, "data.filter_overlong_prompts=true", "data.max_prompt_length=20"
    )
    with pytest.raises(CurriculumDataError, match=r"of 14 training rows were dropped"):
        CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)


def test_training_rows_follow_the_plan_and_validation_does_not(stage_files: dict, tiny_processor, verl_config: Any):
    data_config = _data_config(verl_config, stage_files)
    assert get_dataset_class(data_config) is CurriculumRLDataset
    train = CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)
    expected = reversed_stage_order(data_config.curriculum, [], [6, 4, 4])
    assert train.positions() == expected and len(train) == 6 * 2 + 4 + 4
    assert [train[i]["extra_info"]["id"] for i in range(7)] == [
        *(f"perception-{i}" for i in range(5, -1, -1)),
        "perception-5",  # second epoch of the stage
    ]
    assert train[12]["extra_info"]["id"] == "text_reasoning-3"
    val = CurriculumRLDataset(data_config.val_files, tiny_processor.tokenizer, data_config, tiny_processor)
    assert val.positions() is None and [val[i]["extra_info"]["id"] for i in range(len(val))] == [
        "perception-100",
        "perception-101",
        "text_reasoning-100",
        "text_reasoning-101",
    ]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resumes_at_the_same_row(stage_files: dict, tiny_processor, verl_config, num_workers):
    """What verl's trainer does: StatefulDataLoader(drop_last, collate_fn, SequentialSampler) saved as data.pt."""
    data_config = _data_config(verl_config, stage_files)
    with open_dict(data_config):
        data_config.dataloader_num_workers = num_workers
    dataset = CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)

    def loader() -> StatefulDataLoader:
        return StatefulDataLoader(
            dataset,
            batch_size=2,
            num_workers=num_workers,
            drop_last=True,
            collate_fn=collate_fn,
            sampler=SequentialSampler(dataset),
        )

    uninterrupted = [_ids(batch) for batch in loader()]
    assert len(uninterrupted) == 10
    first = loader()
    iterator = iter(first)
    consumed = [_ids(next(iterator)) for _ in range(7)]
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    assert consumed + [_ids(batch) for batch in resumed] == uninterrupted
