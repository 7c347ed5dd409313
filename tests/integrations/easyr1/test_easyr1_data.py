"""data.py: EasyR1's RLHFDataset, collate function and StatefulDataLoader over the curriculum's data file, with a
real (tiny) Qwen2.5-VL processor; resume of the sampler through EasyR1's ``dataloader.pt``."""

from __future__ import annotations

import io
from pathlib import Path

import easyr1_lane as lane
import pytest
import torch

from vlm_capcurriculum.curriculum import SamplerStateError, build_plan, load_curriculum_data, parse_curriculum
from vlm_capcurriculum.integrations.easyr1.data import (
    EASYR1_NUM_WORKERS,
    load_tokenizer_and_processor,
    train_dataloader,
    use_our_columns,
    val_dataloader,
)
from vlm_capcurriculum.integrations.easyr1.records import write_train_file, write_val_file
from vlm_capcurriculum.prompts import THINK_BOXED


@pytest.fixture(scope="module")
def setup(tmp_path_factory):  # type: ignore[no-untyped-def]
    """EasyR1's config, the tiny model's tokenizer and processor (loaded by EasyR1's loaders), data and plan."""
    from vlm_capcurriculum.integrations.easyr1.config import compose, to_config

    root = tmp_path_factory.mktemp("data")
    lane.register_processor()
    model_dir = lane.save_model_dir(root / "model", processor=True)
    argv = [
        f"worker.actor.model.model_path={model_dir}",
        "data.max_prompt_length=1024",
        "data.min_pixels=3136",
        "data.max_pixels=12544",
        f"data.format_prompt={THINK_BOXED}",
    ]
    config = to_config(compose(argv)[0])
    use_our_columns(config)
    tokenizer, processor = load_tokenizer_and_processor(config)
    spec = parse_curriculum({"batch_size": 8, "stages": lane.sample_stages()})
    data = load_curriculum_data(spec)
    plan = build_plan(spec, data.stage_data())
    train_file = str(write_train_file(data, root / "train.jsonl"))
    config.data.val_files = write_val_file(str(lane.SAMPLES / "visual_reasoning.jsonl"), root / "val.jsonl")
    return config, tokenizer, processor, data, plan, train_file


def test_easyr1_loads_our_processor(setup):
    _, tokenizer, processor, *_ = setup
    assert type(processor).__name__ == "Qwen2_5_VLImageOnlyProcessor"
    assert type(processor.image_processor).__name__ == "Qwen2VLImageProcessor"  # EasyR1's mrope path keys on it
    assert tokenizer.pad_token == "<|endoftext|>"


def test_every_batch_is_its_step_of_the_plan(setup):
    config, tokenizer, processor, data, plan, train_file = setup
    loader = train_dataloader(config, tokenizer, processor, plan, train_file)
    assert loader.num_workers == EASYR1_NUM_WORKERS and loader.drop_last and len(loader) == plan.total_steps
    image_pad = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for step, batch in enumerate(loader, start=1):
        assert list(batch["curriculum_index"]) == list(plan.batch(step))
        stage = plan.stage_at(step)
        assert set(batch["capability"]) == {stage.capability}
        assert batch["input_ids"].shape == (8, 1024) and batch["position_ids"].shape == (8, 4, 1024)  # Qwen mrope
        for row, index in enumerate(batch["curriculum_index"]):
            record = data.records[index]
            assert batch["ground_truth"][row] == record.ground_truth()
            pads = int((batch["input_ids"][row] == image_pad).sum())
            if record.images:  # the processor expanded each <image> into the image's tokens (72x72 -> 3x3 merged)
                assert pads == 9 * len(record.images)
                assert [str(p) for p in batch["multi_modal_data"][row]["images"]] == [
                    str(p) for p in data.image_paths(index)
                ]
            else:
                assert pads == 0 and list(batch["multi_modal_data"][row]["images"]) == []
        prompt = tokenizer.decode(batch["raw_prompt_ids"][0])
        assert prompt.rstrip().endswith("<|im_start|>assistant") and "MUST BE put in \\boxed{}" in prompt


def _state_roundtrip(state: dict) -> dict:
    """As RayPPOTrainer saves and loads dataloader.pt: torch.save, then torch.load(weights_only=False)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("completed", [5, 8])  # inside the first stage; exactly at its end
def test_dataloader_pt_resumes_at_the_next_step(setup, completed):
    config, tokenizer, processor, _, plan, train_file = setup
    first = train_dataloader(config, tokenizer, processor, plan, train_file)
    iterator = iter(first)
    for step in range(1, completed + 1):
        assert list(next(iterator)["curriculum_index"]) == list(plan.batch(step))
    state = _state_roundtrip(first.state_dict())  # workers have prefetched beyond `completed`: not counted
    del iterator

    resumed = train_dataloader(config, tokenizer, processor, plan, train_file)  # a fresh sampler at step 0
    resumed.load_state_dict(state)
    steps = [list(batch["curriculum_index"]) for batch in resumed]
    assert steps == [list(plan.batch(step)) for step in range(completed + 1, plan.total_steps + 1)]


def test_dataloader_pt_of_another_plan_is_refused(setup):
    config, tokenizer, processor, data, plan, train_file = setup
    loader = train_dataloader(config, tokenizer, processor, plan, train_file)
    iterator = iter(loader)
    next(iterator)
    state = _state_roundtrip(loader.state_dict())
    del iterator
    other_spec = parse_curriculum({"batch_size": 8, "seed": 2, "stages": lane.sample_stages()})
    other = train_dataloader(config, tokenizer, processor, build_plan(other_spec, data.stage_data()), train_file)
    other.load_state_dict(state)
    with pytest.raises(SamplerStateError, match="belongs to another plan"):
        next(iter(other))


def test_the_data_file_must_match_the_plan(setup, tmp_path):
    config, tokenizer, processor, data, plan, _ = setup
    short = Path(write_train_file(data, tmp_path / "short.jsonl"))
    short.write_text("".join(short.read_text().splitlines(keepends=True)[:100]))
    with pytest.raises(ValueError, match="holds 100 rows but the plan's global index space has 108"):
        train_dataloader(config, tokenizer, processor, plan, str(short))


def test_validation_loader_is_easyr1s(setup):
    config, tokenizer, processor, *_ = setup
    loader = val_dataloader(config, tokenizer, processor, num_workers=0)
    (batch,) = list(loader)  # val_batch_size=-1 in this config: one batch of everything
    assert len(batch["ground_truth"]) == 36 and "curriculum_index" not in batch
