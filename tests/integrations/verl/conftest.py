"""Fixtures for the verl integration tests: a tiny Qwen2.5-VL-style processor and model, sample records with real
PNG images, verl parquet files, and our Hydra config composed against verl's.

The processor and model are the project's tiny offline Qwen2.5-VL (``vlm_capcurriculum.models``). The reward
tests use a byte-level BPE tokenizer built in code (``byte_bpe_tokenizer_dir``): it decodes every string it encoded
exactly, as Qwen's tokenizer does, so responses reach the reward function unchanged after verl's ``decode``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from verl_samples import ROOT, prepare_sample_run

from vlm_capcurriculum.models import build_tiny, build_tiny_processor

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def tiny_processor() -> Any:
    """The project's tiny Qwen2.5-VL processor (importable classes, so ``datasets`` workers can pickle it)."""
    return build_tiny_processor("qwen2_5_vl")


@pytest.fixture
def tiny_vl_model() -> Any:
    return build_tiny("qwen2_5_vl", seed=0)[0]


def _png(path: Path, colour: str, size: tuple[int, int] = (40, 30)) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).rectangle((5, 5, 25, 20), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_records(image_root: Path, capability: str, count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` records of one capability in our schema (perception: MCQ on an image; text_reasoning: math
    without image; visual_reasoning: a number about an image)."""
    colours = ["red", "blue", "green", "yellow"]
    records = []
    for i in range(start, start + count):
        if capability == "text_reasoning":
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": f"Compute {i} + 30.",
                    "images": [],
                    "answer": str(i + 30),
                    "answer_type": "math",
                    "pass_rate": 0.5,
                    "source": "synthetic",
                }
            )
            continue
        image = f"{capability}/{i}.png"
        _png(image_root / image, colours[i % 4])
        if capability == "perception":
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": "<image>What colour is the square?\nA. red\nB. blue\nC. green\nD. yellow",
                    "images": [image],
                    "answer": "ABCD"[i % 4],
                    "answer_type": "choice",
                    "choices": {"A": "red", "B": "blue", "C": "green", "D": "yellow"},
                    "pass_rate": (i % 5) / 4,
                    "source": "docci-synthetic",
                }
            )
        else:
            records.append(
                {
                    "id": f"{capability}-{i}",
                    "capability": capability,
                    "problem": "How many squares are in the image <image>?",
                    "images": [image],
                    "answer": "1",
                    "answer_type": "number",
                    "source": "synthetic",
                }
            )
    return records


@pytest.fixture
def stage_files(tmp_path: Path) -> dict[str, Path]:
    """One verl parquet file per paper stage (perception 6 rows, text_reasoning 4, visual_reasoning 4) and a
    validation file."""
    from vlm_capcurriculum.integrations.verl.writer import write_verl_parquet

    image_root = tmp_path / "images"
    sizes = {"perception": 6, "text_reasoning": 4, "visual_reasoning": 4}
    files = {}
    for capability, count in sizes.items():
        files[capability] = tmp_path / f"{capability}.parquet"
        write_verl_parquet(make_records(image_root, capability, count), files[capability], image_root=image_root)
    val = make_records(image_root, "perception", 2, start=100) + make_records(image_root, "text_reasoning", 2, 100)
    files["val"] = tmp_path / "val.parquet"
    write_verl_parquet(val, files["val"], image_root=image_root)
    return files


#: What every launch must set for verl's own validation to pass on a 1-GPU layout (as in verl's example scripts).
BASE_OVERRIDES = [
    "actor_rollout_ref.model.path=/nonexistent/tiny-model",
    "actor_rollout_ref.actor.ppo_mini_batch_size=2",
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=1",
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=1",
    "actor_rollout_ref.rollout.name=vllm",
    "data.train_batch_size=2",
    "data.dataloader_num_workers=0",
    "trainer.n_gpus_per_node=1",
    "trainer.nnodes=1",
    "trainer.logger=[console]",
]


def compose_config(overrides: list[str] | None = None) -> Any:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="vlm_capcurriculum.integrations.verl.config", version_base=None):
        return compose("capcurriculum_trainer", overrides=BASE_OVERRIDES + list(overrides or []))


@pytest.fixture
def verl_config() -> Callable[..., Any]:
    return compose_config


@pytest.fixture
def sample_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """``sample_run(*recipe_overrides)``: a prepared verl run of the sample recipe in ``tmp_path/run``."""
    monkeypatch.chdir(ROOT)

    def prepare(*overrides: str, output_dir: Path | None = None) -> Any:
        return prepare_sample_run(output_dir or tmp_path / "run", *overrides)

    return prepare


# ---------------------------------------------------------------- reward tests: a real tokenizer

CORPUS = [
    "<think> Let me look at the image and count. </think> The answer is \\boxed{3}.",
    "\\frac{1}{2} \\sqrt{12} x^2 + 2x + 1 = 0 (1, 2) [0, 1) \\{1, 2\\} 90^\\circ 25\\%",
    "Option B: a blue umbrella. Yes, there is a dog. The car is red.",
    "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@pytest.fixture(scope="session")
def byte_bpe_tokenizer_dir(tmp_path_factory) -> str:
    """Directory of a saved ``PreTrainedTokenizerFast`` (byte-level BPE, 512 tokens), loadable by verl's
    ``hf_tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS * 20, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    directory = tmp_path_factory.mktemp("byte_bpe_tokenizer")
    fast.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def byte_bpe_tokenizer(byte_bpe_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(byte_bpe_tokenizer_dir)
