"""Real GRPO training through verl on a CPU (``backend.device=cpu``), started by the real launcher
(``python -m vlm_capcurriculum train ... backend=verl``): verl's trainer, FSDP2 workers on gloo, the ``hf``
rollout, our reward, the core's stage controller. Assertions read the run's artefacts (stage folders, checkpoints,
reference snapshots, the steps file), never its log.

Runs are shared between tests through module-scoped fixtures and shrunk to one epoch per stage (4 steps of 8
prompts, 12 steps) with 2 responses per prompt.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from testkit import REPO

pytest.importorskip("verl")

pytestmark = pytest.mark.slow

SHRUNK = [
    "data=samples",
    "backend=verl",
    "backend.device=cpu",
    "curriculum.stages.0.epochs=1",
    "curriculum.stages.1.epochs=1",
    "curriculum.stages.2.epochs=1",
    "train.rollout_n=2",
    "backend.overrides.trainer.val_before_train=false",
]


def _command(output_dir: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vlm_capcurriculum",
        "train",
        "--config",
        "recipes/config.yaml",
        *SHRUNK,
        f"backend.output_dir={output_dir}",
        *overrides,
    ]


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "RAY_DEDUP_LOGS": "0"}


def _train(output_dir: Path, *overrides: str, timeout: int = 1200, env: dict[str, str] | None = None) -> Path:
    log = output_dir.with_suffix(".log")
    with log.open("w") as handle:
        result = subprocess.run(
            _command(output_dir, *overrides), cwd=REPO, env={**_environment(), **(env or {})}, stdout=handle,
            stderr=subprocess.STDOUT, timeout=timeout, start_new_session=True,
        )  # fmt: skip
    assert result.returncode == 0, f"training failed, see {log}:\n" + log.read_text()[-4000:]
    return output_dir


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    weights: dict[str, torch.Tensor] = {}
    for path in sorted(glob.glob(str(folder / "*.safetensors"))):
        weights.update(load_file(path))
    assert weights, f"no safetensors in {folder}"
    return weights


def _tower(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in weights.items() if "visual" in name}


def _stages(output_dir: Path) -> list[Path]:
    return sorted((output_dir / "stages").iterdir())


@pytest.fixture(scope="module")
def staged_qwen2_5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staged sample plan on a tiny Qwen2.5-VL, 1 rank, checkpoints every 2 steps."""
    out = tmp_path_factory.mktemp("verl_cpu") / "qwen2_5_staged"
    return _train(out, "model=tiny_qwen2_5_vl", "backend.overrides.trainer.save_freq=2")


@pytest.fixture(scope="module")
def staged_qwen3_two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staged sample plan on a tiny Qwen3-VL on 2 FSDP ranks."""
    out = tmp_path_factory.mktemp("verl_cpu") / "qwen3_staged_2ranks"
    return _train(out, "model=tiny_qwen3_vl", "backend.cpu_ranks=2")


@pytest.fixture(scope="module")
def merged_qwen2_5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The merged baseline (one stage over all capabilities, tower frozen as in the paper), one epoch."""
    out = tmp_path_factory.mktemp("verl_cpu") / "qwen2_5_merged"
    return _train(out, "model=tiny_qwen2_5_vl", "curriculum=merged", "curriculum.stages.0.epochs=1")


def test_merged_baseline_keeps_the_tower_and_trains_the_rest(merged_qwen2_5: Path) -> None:
    base = _weights(merged_qwen2_5 / "base_model")
    (folder,) = _stages(merged_qwen2_5)
    final = _weights(folder)
    assert all(torch.equal(tensor, base[name]) for name, tensor in _tower(final).items())
    assert any(not torch.equal(tensor, base[name]) for name, tensor in final.items() if "visual" not in name)
    summary = json.loads((merged_qwen2_5 / "curriculum_summary.json").read_text())
    assert summary["completed_steps"] == summary["total_steps"]


def test_layout_files(staged_qwen2_5: Path) -> None:
    from vlm_capcurriculum.curriculum.run_layout import StepsLog

    summary = json.loads((staged_qwen2_5 / "curriculum_summary.json").read_text())
    assert [entry["name"] for entry in summary["stages"]] == ["perception", "text_reasoning", "visual_reasoning"]
    assert summary["completed_steps"] == 12 and all(entry["complete"] for entry in summary["stages"])
    steps = StepsLog(staged_qwen2_5).read()
    assert [record["step"] for record in steps] == list(range(1, 13))
    assert all(len(record["sample_ids"]) == 8 for record in steps)
    assert [record["stage"] for record in steps[3:5]] == ["perception", "text_reasoning"]
    assert any(record["reward"] and record["reward"] > 0 for record in steps)  # the warm start gives signal
    assert [path.name for path in _stages(staged_qwen2_5)] == ["01-perception", "02-text_reasoning",
                                                              "03-visual_reasoning"]  # fmt: skip


@pytest.mark.parametrize("fixture", ["staged_qwen2_5", "staged_qwen3_two_ranks"])
def test_tower_frozen_in_stage_2_and_trained_in_stages_1_and_3(fixture: str, request: pytest.FixtureRequest) -> None:
    output_dir: Path = request.getfixturevalue(fixture)
    base = _tower(_weights(output_dir / "base_model"))
    first, second, third = (_tower(_weights(folder)) for folder in _stages(output_dir))
    assert first.keys() == second.keys() == third.keys() and first
    assert any(not torch.equal(first[name], base[name]) for name in first)  # trainable in stage 1
    assert all(torch.equal(first[name], second[name]) for name in first)  # frozen in stage 2: bit-identical
    assert any(not torch.equal(second[name], third[name]) for name in second)  # trainable in stage 3


def test_stage_folders_reload_and_generate(staged_qwen2_5: Path) -> None:
    from vlm_capcurriculum.models import load_tiny

    for folder in _stages(staged_qwen2_5):
        model, processor = load_tiny(folder)
        ids = processor.tokenizer("2+2=", return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=4, do_sample=False)
        assert out.shape[1] > ids.shape[1]


def test_optimizer_state_restarts_at_a_reset_optimizer_stage_start(staged_qwen2_5: Path) -> None:
    """global_step_8 is stage 2's last step: 4 Adam steps since the reset at step 5 (not 8), and no state at all for
    the tower, which was reset and then frozen."""
    optimizer = torch.load(
        staged_qwen2_5 / "checkpoints" / "global_step_8" / "actor" / "optim_world_size_1_rank_0.pt", weights_only=False
    )
    states = optimizer["state"]
    assert states and {int(state["step"]) for state in states.values()} == {4}
    params = [index for group in optimizer["param_groups"] for index in group["params"]]
    assert len(states) < len(params)  # the tower's parameters hold no state since the reset


@pytest.fixture(scope="module")
def staged_internvl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The staged sample plan on a tiny InternVL3 on 2 FSDP ranks, in batches of 16 (2 steps per stage: one run costs
    about 3 minutes on 2 idle cores, mostly start-up). InternVL3.5 (the same InternVL classes over a Qwen3 LM) is
    covered by the quick start, ``model=tiny_internvl3_5``, and by the unit tests of the patches."""
    out = tmp_path_factory.mktemp("verl_cpu") / "internvl3_staged"
    metrics = {"VERL_FILE_LOGGER_PATH": str(out / "metrics.jsonl")}  # verl's file logger, for rollout_check
    return _train(
        out, "model=tiny_internvl3", "backend.cpu_ranks=2", "curriculum.batch_size=16", "train.global_batch_size=16",
        "backend.overrides.trainer.logger=[console,file]", env=metrics,
    )  # fmt: skip


def test_internvl_tower_and_projector_frozen_in_stage_2_and_trained_in_stages_1_and_3(staged_internvl: Path) -> None:
    """InternVL's tower is ``vision_tower`` *and* ``multi_modal_projector`` (integrations/torch_ops.py): both bit-identical
    across the frozen stage, both changed in the trainable ones; the exports reload and generate from an image; the
    warm-started model earns rewards (the agent loop's prompt and the training inputs agreed on the tiles, or the
    forward would have rejected the image-token count)."""
    from PIL import Image

    from vlm_capcurriculum.curriculum.run_layout import StepsLog
    from vlm_capcurriculum.models import load_tiny

    parts = ("vision_tower.", "multi_modal_projector.")
    base = _weights(staged_internvl / "base_model")
    stages = [_weights(folder) for folder in _stages(staged_internvl)]
    assert len(stages) == 3
    for part in parts:
        names = [name for name in base if name.startswith(part)]
        assert names and all(names[0] in weights for weights in stages), part
        first, second, third = ({name: weights[name] for name in names} for weights in stages)
        assert any(not torch.equal(first[name], base[name]) for name in names), part  # trainable in stage 1
        assert all(torch.equal(first[name], second[name]) for name in names), part  # frozen in stage 2
        assert any(not torch.equal(second[name], third[name]) for name in names), part  # trainable in stage 3
    steps = StepsLog(staged_internvl).read()
    assert any(record["reward"] and record["reward"] > 0 for record in steps)
    for folder in _stages(staged_internvl):
        model, processor = load_tiny(folder)
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour?"}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], images=[Image.new("RGB", (120, 60), "red")], return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
        assert out.shape[1] > inputs["input_ids"].shape[1]


def test_rollout_check_passes_hf_and_fails_an_image_blind_rollout(staged_internvl: Path, tmp_path: Path) -> None:
    """The GPU check's reader (recipes/gpu_checks/verl_internvl.sh) on verl's real metrics file: the hf rollout runs
    the actor's own model class on the same inputs, so they agree; the same run with the image stages' rollout/actor
    disagreement raised (as when a rollout engine does not see the images) fails the image stages only."""
    from vlm_capcurriculum.integrations.verl.rollout_check import check, main

    metrics = staged_internvl / "metrics.jsonl"
    assert main([str(metrics)]) == 0
    rows, _ = check([metrics])
    assert [row.split()[1] for row in rows] == ["perception", "text_reasoning", "visual_reasoning"]
    blind = tmp_path / "blind" / "metrics.jsonl"
    blind.parent.mkdir()
    lines = []
    for line in metrics.read_text().splitlines():
        record = json.loads(line)
        data = record["data"]
        if "rollout_corr/log_ppl_abs_diff" in data and "stage/text_reasoning/reward/acc" not in data:
            data["rollout_corr/log_ppl_abs_diff"] = 10 * data["rollout_corr/log_ppl_abs_diff"] + 0.5
        lines.append(json.dumps(record))
    blind.write_text("\n".join(lines) + "\n")
    _, problems = check([blind])
    assert len(problems) == 2 and all("does not see the images" in p for p in problems)
    assert "perception" in problems[0] and "visual_reasoning" in problems[1]


def _normalise(name: str) -> str:
    """HF export names (``visual.*``, ``model.*``) and module names (``model.visual.*``, ``model.language_model.*``)."""
    for prefix, replacement in (("model.visual.", "visual."), ("model.language_model.", "model.")):
        if name.startswith(prefix):
            return replacement + name[len(prefix) :]
    return name


def test_reference_equals_policy_at_refresh_reference(staged_qwen2_5: Path) -> None:
    reference = torch.load(
        staged_qwen2_5 / "checkpoints" / "curriculum" / "reference_02_text_reasoning.pt", weights_only=False
    )
    policy = _weights(_stages(staged_qwen2_5)[0])  # the policy at the end of stage 1 = at stage 2's start
    reference = {_normalise(name): tensor for name, tensor in reference.items()}
    shared = reference.keys() & policy.keys()
    assert len(shared) >= len(policy) - 1  # all but a tied lm_head
    assert all(torch.equal(reference[name].float(), policy[name].float()) for name in shared)


def test_killed_mid_stage_and_restarted_resumes_to_the_same_steps(staged_qwen2_5: Path, tmp_path: Path) -> None:
    from vlm_capcurriculum.curriculum.run_layout import StepsLog

    out = tmp_path / "killed"
    extra = ("model=tiny_qwen2_5_vl", "backend.overrides.trainer.save_freq=2")
    log = out.with_suffix(".log").open("w")
    process = subprocess.Popen(
        _command(out, *extra), cwd=REPO, env=_environment(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 900
    checkpoint = out / "checkpoints" / "global_step_6"
    while not (checkpoint / "data.pt").exists():  # inside stage 2 (steps 5-8)
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before global_step_6"
        time.sleep(1)
    time.sleep(2)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher, Ray and every worker
    process.wait()
    _train(out, *extra)

    # Resumed from global_step_6 (not from scratch, not from a later step): steps 1-6 were kept, 7-12 replayed with the
    # same batches, stages, rewards and accuracies (the hf rollout's sampling does not depend on request timing).
    resumed, uninterrupted = StepsLog(out).read(), StepsLog(staged_qwen2_5).read()
    assert [r["step"] for r in resumed] == list(range(1, 13))
    assert resumed == uninterrupted
    assert (out / "checkpoints" / "global_step_12").is_dir() and len(list((out / "stages").iterdir())) == 3
