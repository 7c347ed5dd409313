"""The opt-in EasyR1 lane: these tests run only in the environment made by ``run_lane.sh EASYR1_SRC``.

Everywhere else (CI has volcengine verl installed as ``verl`` and transformers 5) only ``test_easyr1_installed.py``
is collected (the version check needs no EasyR1), before any test module imports torch, transformers or ``verl``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vlm_capcurriculum.integrations.easyr1.installed import easyr1_location, is_easyr1_installed


def _skip_reason() -> str | None:
    source = os.environ.get("EASYR1_SRC")
    if not source:
        return "EasyR1 lane only: EASYR1_SRC is not set (run: tests/integrations/easyr1/run_lane.sh EASYR1_SRC)"
    if not is_easyr1_installed():
        location = easyr1_location()
        found = "no `verl` package" if location is None else f"`verl` at {location} is not EasyR1"
        return f"EasyR1 lane only: EASYR1_SRC={source} but {found} (run tests/integrations/easyr1/run_lane.sh)"
    return None


LANE_SKIP_REASON = _skip_reason()
if LANE_SKIP_REASON:
    collect_ignore_glob = ["test_easyr1_[!i]*.py", "test_easyr1_internvl*.py"]  # all but test_easyr1_installed.py
else:
    import easyr1_lane  # (after the lane gate: imports torch and transformers)
    import lane_placeholders

    # qwen_vl_utils imports torchvision, which the CPU lane cannot install; vLLM is *not* stubbed here (tests that
    # need it run in a subprocess) so that in-process tests see the real "no vLLM" situation.
    lane_placeholders.install("qwen_vl_utils")


def pytest_configure(config: pytest.Config) -> None:
    # One-process FSDP (the in-process tests) is NO_SHARD by design; the sharded cases run in several processes.
    config.addinivalue_line("filterwarnings", "ignore:FSDP is switching to use `NO_SHARD`:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:When using ``NO_SHARD`` for ``ShardingStrategy``:UserWarning")
    # EasyR1 hard-codes 8 loader workers (create_dataloader); the lane keeps that on its 2 cores on purpose.
    config.addinivalue_line("filterwarnings", "ignore:This DataLoader will create 8 worker processes:UserWarning")
    config.addinivalue_line("filterwarnings", "ignore:'set_vital' is deprecated:UserWarning")


@pytest.fixture(scope="session")
def easyr1_src() -> Path:
    return Path(os.environ["EASYR1_SRC"]).absolute()


@pytest.fixture(scope="session")
def process_group() -> None:
    """A one-process gloo group for the whole session (FSDP and EasyR1's checkpoint manager need one)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        easyr1_lane.init_process_group(0, 1, easyr1_lane.free_port())


@pytest.fixture(scope="session")
def tokenizer():  # type: ignore[no-untyped-def]
    return easyr1_lane.build_tokenizer()


@pytest.fixture(scope="session")
def model_config(tokenizer):  # type: ignore[no-untyped-def]
    return easyr1_lane.build_config(tokenizer)


@pytest.fixture(scope="session")
def batch(model_config):  # type: ignore[no-untyped-def]
    return easyr1_lane.image_inputs(model_config)
