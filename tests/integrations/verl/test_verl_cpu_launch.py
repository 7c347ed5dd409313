"""``backend.device=cpu`` in the launcher (dry run: no Ray): the verl keys it adds, the tiny model path, the layout
directory, and a clear error for an unknown device."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("verl")

from testkit import REPO
from verl_samples import prepare_sample_run

from vlm_capcurriculum.launch import LaunchError


def test_cpu_device_composes_the_hf_rollout_on_gloo_ranks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    run = prepare_sample_run(tmp_path / "out", "model=tiny_qwen2_5_vl", "backend.device=cpu", "backend.cpu_ranks=2")
    config = run.config
    assert run.device == "cpu"
    assert config.trainer.device == "cpu" and config.trainer.n_gpus_per_node == 2
    assert config.actor_rollout_ref.rollout.name == "hf"
    assert config.actor_rollout_ref.actor.strategy == "fsdp2"
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"
    assert config.actor_rollout_ref.model.path == str(tmp_path / "out" / "base_model")  # built before Ray starts
    assert config.curriculum.output_dir == str(tmp_path / "out")
    assert config.data.mm_processor_kwargs.min_pixels == 3136  # the tiny processor's bounds (model recipe)


def test_unknown_device_is_a_launch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    with pytest.raises(LaunchError, match=r"backend\.device"):
        prepare_sample_run(tmp_path / "out", "backend.device=tpu")
