"""Written files through verl's own ``RLHFDataset`` and ``collate_fn`` with a real (tiny) Qwen2.5-VL processor, and
our curriculum dataset, built by verl's ``create_rl_dataset`` from the launcher's files for the sample recipe, in
the real plan's order and resumed exactly under torchdata's ``StatefulDataLoader``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("verl")

from omegaconf import open_dict
from PIL import Image
from torch.utils.data import SequentialSampler
from torchdata.stateful_dataloader import StatefulDataLoader
from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn, get_dataset_class
from verl.utils.tokenizer import build_multimodal_processor_inputs

from vlm_capcurriculum.config import ConfigError
from vlm_capcurriculum.integrations.verl.dataset import CurriculumDataError, CurriculumRLDataset
from vlm_capcurriculum.prompts import render_prompt


def _data_config(verl_config: Any, stage_files: dict[str, Path], *extra: str) -> Any:
    train = f"[{stage_files['perception']},{stage_files['text_reasoning']},{stage_files['visual_reasoning']}]"
    config = verl_config([f"data.train_files={train}", f"data.val_files=[{stage_files['val']}]", *extra])
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
    instruction = render_prompt("").strip()  # the format prompt's text after the problem
    assert content[1]["text"].startswith("What colour is the square?") and content[1]["text"].endswith(instruction)

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


def test_training_rows_follow_the_plan_and_validation_does_not(sample_run: Any, tiny_processor: Any) -> None:
    run = sample_run()
    data_config = run.config.data
    assert get_dataset_class(data_config) is CurriculumRLDataset
    # what the trainer's _init_dataloader does
    train = create_rl_dataset(data_config.train_files, data_config, tiny_processor.tokenizer, tiny_processor, True)
    assert isinstance(train, CurriculumRLDataset) and isinstance(
        create_rl_sampler(data_config, train), SequentialSampler
    )
    ids = [record.id for record in run.data.records]
    assert train.order == list(run.plan.indices) and len(train) == 12 * 8
    assert [train[i]["extra_info"]["id"] for i in range(len(train))] == [ids[i] for i in run.plan.indices]
    # image rows carry absolute paths of the sample images (embed_images=false), placed where <image> was
    row = train[0]
    image = row["raw_prompt"][0]["content"][0]
    assert image["type"] == "image" and Path(image["image"]).is_file()

    val = create_rl_dataset(data_config.val_files, data_config, tiny_processor.tokenizer, tiny_processor, False)
    assert val.order is None
    assert [val[i]["extra_info"]["id"] for i in range(len(val))] == [f"visual_reasoning-{i:03d}" for i in range(36)]


def test_training_files_must_be_the_plans_records_in_stage_order(sample_run: Any, tiny_processor: Any) -> None:
    run = sample_run()
    data_config = run.config.data
    with open_dict(data_config):
        data_config.train_files = [str(path) for path in reversed(run.train_files)]
    with pytest.raises(
        ConfigError,
        match=r"train_03_visual_reasoning.parquet row 0 has id 'visual_reasoning-000', but record 0",
    ):
        CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)
    with open_dict(data_config):
        data_config.train_files = [str(path) for path in run.train_files[:2]]
    with pytest.raises(ConfigError, match=r"hold 72 rows but the curriculum's stages hold 108 records"):
        CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)


def test_order_must_fill_whole_batches(sample_run: Any, tiny_processor: Any) -> None:
    data_config = sample_run().config.data
    data_config.train_batch_size = 5
    with pytest.raises(CurriculumDataError, match=r"96 rows, not a multiple of data.train_batch_size=5"):
        CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_stateful_dataloader_resumes_at_the_same_row(sample_run: Any, tiny_processor: Any, num_workers: int) -> None:
    """What verl's trainer does: StatefulDataLoader(drop_last, collate_fn, SequentialSampler) saved as data.pt."""
    run = sample_run()
    data_config = run.config.data
    dataset = CurriculumRLDataset(data_config.train_files, tiny_processor.tokenizer, data_config, tiny_processor)

    def loader() -> StatefulDataLoader:
        return StatefulDataLoader(
            dataset,
            batch_size=data_config.train_batch_size,
            num_workers=num_workers,
            drop_last=True,
            collate_fn=collate_fn,
            sampler=SequentialSampler(dataset),
        )

    uninterrupted = [_ids(batch) for batch in loader()]
    ids = [record.id for record in run.data.records]
    assert uninterrupted == [[ids[i] for i in run.plan.batch(step)] for step in range(1, 13)]
    first = loader()
    iterator = iter(first)
    consumed = [_ids(next(iterator)) for _ in range(6)]  # into the second stage
    state = first.state_dict()
    resumed = loader()
    resumed.load_state_dict(state)
    assert consumed + [_ids(batch) for batch in resumed] == uninterrupted


def test_paper_pixel_bounds_reach_the_processor(tiny_processor: Any, verl_config: Any) -> None:
    """``data.mm_processor_kwargs`` (our config: the paper's 262144..4194304 pixels) is what verl's agent loop passes
    to the processor with every prompt's images; the Qwen image processor honours both bounds."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
    text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    patch = tiny_processor.image_processor.patch_size

    def pixels(size: tuple[int, int], kwargs: dict) -> int:
        inputs = build_multimodal_processor_inputs(
            tiny_processor, text=[text], images=[Image.new("RGB", size)], mm_processor_kwargs=kwargs
        )
        return int(inputs["image_grid_thw"][0].prod()) * patch * patch

    paper = dict(verl_config().data.mm_processor_kwargs)
    assert paper == {"min_pixels": 262144, "max_pixels": 4194304}
    assert pixels((40, 30), {}) < 262144 <= pixels((40, 30), paper)  # small images are scaled up to the minimum
    assert pixels((200, 200), {"min_pixels": 3136, "max_pixels": 3136}) == 3136  # and large ones down to the maximum
