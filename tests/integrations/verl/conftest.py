"""Fixtures for the verl integration tests: a tiny Qwen2.5-VL-style processor and model, sample records with real
PNG images, verl parquet files, and our Hydra config composed against verl's.

The processor and model are the project's tiny offline Qwen2.5-VL (``vlm_capcurriculum.models``). The reward
tests use its byte-level BPE tokenizer (``byte_bpe_tokenizer_dir``): it decodes every string it encoded exactly, as
Qwen's tokenizer does, so responses reach the reward function unchanged after verl's ``decode``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testkit import REPO
from verl_samples import make_records, prepare_sample_run

from vlm_capcurriculum.models import build_tiny, build_tiny_processor

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def tiny_processor() -> Any:
    """The project's tiny Qwen2.5-VL processor (importable classes, so ``datasets`` workers can pickle it)."""
    return build_tiny_processor("qwen2_5_vl")


@pytest.fixture
def tiny_vl_model() -> Any:
    return build_tiny("qwen2_5_vl", seed=0)[0]


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
    monkeypatch.chdir(REPO)

    def prepare(*overrides: str, output_dir: Path | None = None, layout: bool = False) -> Any:
        run = prepare_sample_run(output_dir or tmp_path / "run", *overrides)
        if not layout:
            # No common output layout by default: the recording stand-ins for the workers write no HF export to
            # copy (the layout is tested by the real CPU runs, test_verl_cpu_e2e.py).
            run.config.curriculum.output_dir = None
        return run

    return prepare


# ---------------------------------------------------------------- reward tests: a real tokenizer


@pytest.fixture(scope="session")
def byte_bpe_tokenizer_dir(tmp_path_factory) -> str:
    """Directory of the tiny Qwen2.5-VL tokenizer (byte-level BPE: it decodes every string it encoded), loadable
    by verl's ``hf_tokenizer``."""
    directory = tmp_path_factory.mktemp("tiny_tokenizer")
    build_tiny_processor("qwen2_5_vl").tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def byte_bpe_tokenizer(byte_bpe_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(byte_bpe_tokenizer_dir)
