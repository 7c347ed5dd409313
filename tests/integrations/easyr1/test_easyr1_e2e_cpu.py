"""The sample curriculum end to end through our EasyR1 entry point on a CPU, with EasyR1's real workers.

Each run is a subprocess (``cpu_harness.py``): our ``main.main`` on a local Ray, EasyR1's ``fit`` and
``FSDPWorker`` (gloo, CPU tensors; ``cpu_worker.py``: the CPU patches and the transformers rollout) training the
package's tiny Qwen2.5-VL, format warm-started as the ``tiny://`` quick starts build it
(``easyr1_lane.warm_tiny_model``), our reward through EasyR1's reward manager. Three stages of 2 steps (8 prompts x 2
responses): perception (tower trainable), text reasoning (tower frozen), visual reasoning (tower trainable); the
optimizer is reset at every stage start and the reference refreshed at the starts of stages 1-2 (stage 3 keeps
it, as a control). ``trainer.save_freq=1`` keeps every step's EasyR1 checkpoint to compare.

Checked on the artefacts: the layout every backend writes (``stages/NN-name/`` Hugging Face folders,
``curriculum_summary.json``, ``curriculum_steps.jsonl``), the tower bit-identical across the frozen stage and
changed across trainable ones, Adam's step counts restarting at each stage, the KL to the reference vanishing
right after a refresh (reference == policy) and not without one, the stage exports reloading with
``from_pretrained`` equal to the trained weights, a run killed (SIGKILL) at step 5 and resumed from EasyR1's
``global_step_3`` (and our ``dataloader.pt``) writing the same steps file as the uninterrupted run, and the
chained execution (one EasyR1 run per stage, shards merged) handing each stage the previous stage's weights and
writing the whole chain's steps file and summary as one run does. The warm start makes rewards non-zero and vary
within groups: some steps' GRPO advantages are non-zero, so their updates carry a policy gradient (its share of the
weight change cannot be told apart from the KL term's: Adam normalises the sum).

Tiny Qwen3-VL runs the same curriculum shortened to one step per stage (EasyR1's own Qwen3-VL support under its
transformers 4.57 pin): real steps in every stage, the tower frozen in stage 2 only, the exports reloading. EasyR1
picks Qwen3-VL's mrope position ids by the processor's class name (``"Qwen3VLProcessor" in name``), which our
image-only class does not match, so its dataset uses Qwen2-VL's ``get_rope_index``: for images (grid t = 1) the two
compute the same ids; they differ only for videos, which the curriculum does not use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import easyr1_lane
import pytest
import torch

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
HARNESS = HERE / "cpu_harness.py"
STAGES = ("01-perception", "02-text_reasoning", "03-visual_reasoning")
RUN_TIMEOUT = 1200


def _config(model_dir: Path, root: Path, steps: int = 2, **trainer: Any) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = easyr1_lane.sample_run_config(
        model_dir,
        root / "run",
        trainer={"n_gpus_per_node": 1, "save_freq": 1, "save_limit": -1, **trainer},
    )
    actor = config["worker"]["actor"]
    # the CPU execution's settings (cpu_worker.py): no flash-attn varlen, no torch.compile, no rank-0 broadcast
    actor.update(padding_free=False, dynamic_batching=False, use_torch_compile=False)
    actor["fsdp"] = {"enable_rank0_init": False}
    actor["optim"] = {"lr": 5e-4}  # large enough for every step to move bf16 exports
    config["worker"]["ref"] = {"fsdp": {"enable_rank0_init": False}}
    config["worker"]["rollout"]["tensor_parallel_size"] = 1
    config["data"]["val_files"] = str(_val_file(root))
    for stage in config["curriculum"]["stages"]:
        stage.pop("epochs")
        stage["steps"] = steps
    config["curriculum"]["stages"][2]["overrides"]["refresh_reference"] = False
    return easyr1_lane.write_yaml(config, root / "config.yaml")


def _val_file(root: Path) -> Path:
    """Four visual-reasoning rows, their images copied beside the file (image paths stay inside the file's image
    root, as the record checks require): validation at every stage end stays cheap."""
    rows = [json.loads(line) for line in (easyr1_lane.SAMPLES / "visual_reasoning.jsonl").read_text().splitlines()]
    lines = []
    for row in rows[:4]:
        for image in row["images"]:
            (root / image).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(easyr1_lane.SAMPLES / image, root / image)
        lines.append(json.dumps(row) + "\n")
    path = root / "val.jsonl"
    path.write_text("".join(lines))
    return path


def _harness(*args: str, env: dict[str, str] | None = None, expect_ok: bool = True) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(HERE), str(easyr1_lane.REPO)])
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **(env or {})}
    done = subprocess.run(
        [sys.executable, str(HARNESS), *args], capture_output=True, text=True, env=environment, timeout=RUN_TIMEOUT
    )
    if expect_ok and done.returncode != 0:
        pytest.fail(f"harness {args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return done


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    easyr1_lane.register_processor()
    return easyr1_lane.warm_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def qwen3_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    easyr1_lane.register_processor()
    return easyr1_lane.warm_tiny_model("qwen3_vl", tmp_path_factory.mktemp("tiny_qwen3"))


@pytest.fixture(scope="module")
def staged(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("staged")
    _harness(f"config={_config(model_dir, base)}")
    return base / "run"


@pytest.fixture(scope="module")
def staged_qwen3(qwen3_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("staged_qwen3")
    _harness(f"config={_config(qwen3_model_dir, base, steps=1)}")
    return base / "run"


@pytest.fixture(scope="module")
def resumed(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], Any]:
    base = tmp_path_factory.mktemp("resumed")
    config = _config(model_dir, base, save_freq=3)
    killed = _harness(f"config={config}", env={"VLMCC_LANE_KILL_AT_STEP": "5"}, expect_ok=False)
    assert killed.returncode != 0, "the run was to be killed when step 5 began"
    root = base / "run"
    steps_at_kill = _steps(root)
    tracker = json.loads((root / "checkpoint_tracker.json").read_text())
    _harness(f"config={config}")
    return root, steps_at_kill, tracker


@pytest.fixture(scope="module")
def chained(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("chained")
    config = _config(model_dir, base)
    _harness("--chain", f"config={config}", "curriculum.execution=chained")
    return base / "run"


def _steps(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "curriculum_steps.jsonl").read_text().splitlines()]


def _advantage_ranges(root: Path) -> dict[int, tuple[float, float]]:
    """(min, max) of each step's GRPO advantages over the valid response tokens, from EasyR1's own file log."""
    lines = [json.loads(line) for line in (root / "experiment_log.jsonl").read_text().splitlines()]
    return {
        line["step"]: (line["critic"]["advantages"]["min"], line["critic"]["advantages"]["max"])
        for line in lines
        if "critic" in line
    }


def _actor(root: Path, step: int) -> dict[str, torch.Tensor]:
    shard = torch.load(root / f"global_step_{step}" / "actor" / "model_world_size_1_rank_0.pt", weights_only=False)
    return {key: value.full_tensor() if hasattr(value, "full_tensor") else value for key, value in shard.items()}


def _optimizer_steps(root: Path, step: int) -> set[float]:
    state = torch.load(root / f"global_step_{step}" / "actor" / "optim_world_size_1_rank_0.pt", weights_only=False)
    return {float(entry["step"]) for entry in state["state"].values()}


def _split(weights: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    tower = {key: value for key, value in weights.items() if ".visual." in f".{key}"}
    rest = {key: value for key, value in weights.items() if key not in tower}
    assert tower and rest
    return tower, rest


def _same(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[key], right[key]) for key in left)


def _model(path: Path) -> Any:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(path, dtype=torch.float32)


def _run_config(root: Path) -> Any:
    from vlm_capcurriculum.integrations.easyr1.config import load_run_config

    return load_run_config([f"config={root.parent / 'config.yaml'}"])


def test_every_stage_trains_real_steps_in_the_common_layout(staged: Path) -> None:
    from vlm_capcurriculum.integrations.easyr1.main import load_data

    data, plan = load_data(_run_config(staged))
    steps = _steps(staged)
    assert [line["step"] for line in steps] == list(range(1, 7))
    assert [line["stage"] for line in steps] == ["perception"] * 2 + ["text_reasoning"] * 2 + ["visual_reasoning"] * 2
    for line in steps:  # the batch EasyR1 trained is the plan's, by record id
        assert line["sample_ids"] == [data.records[index].id for index in plan.batch(line["step"])]
        assert 0.0 <= line["reward"] <= 1.0 and 0.0 <= line["accuracy"] <= 1.0  # our reward on every response
        assert line["kl_loss"] is not None and line["lr"] == 5e-4
    summary = json.loads((staged / "curriculum_summary.json").read_text())
    assert summary["completed_steps"] == 6 and summary["backend"] == "easyr1"
    # the warm start: rewards are earned (not all 0), and some steps' advantages are non-zero (a policy gradient)
    assert any(line["reward"] > 0 for line in steps) and any(line["format"] > 0 for line in steps)
    advantages = _advantage_ranges(staged)
    assert sorted(advantages) == list(range(1, 7))
    assert any(low < 0 < high for low, high in advantages.values())
    assert [(entry["name"], entry["steps"], entry["complete"]) for entry in summary["stages"]] == [
        ("perception", 2, True), ("text_reasoning", 2, True), ("visual_reasoning", 2, True),
    ]  # fmt: skip
    for entry, name in zip(summary["stages"], STAGES, strict=True):
        assert entry["checkpoint"] == str(staged / "stages" / name)
        assert entry["validation"] and "val/reward_score" in entry["validation"]  # EasyR1 validated each stage end
    assert sorted(path.name for path in (staged / "stages").iterdir()) == list(STAGES)
    info = json.loads((staged / "stages" / STAGES[1] / "stage.json").read_text())
    assert info["global_step"] == 4 and info["plan_fingerprint"] == plan.fingerprint


def test_vision_tower_is_frozen_in_stage_2_and_trains_in_stages_1_and_3(staged: Path, model_dir: Path) -> None:
    base = {key: value for key, value in _model(model_dir).state_dict().items()}
    after = {step: _split(_actor(staged, step)) for step in (2, 3, 4, 6)}
    base_tower = {key: base[key] for key in after[2][0]}
    assert not _same(base_tower, after[2][0]), "the tower trains in stage 1"
    assert _same(after[2][0], after[3][0]) and _same(after[2][0], after[4][0]), "tower bit-identical in stage 2"
    assert not _same(after[2][1], after[4][1]), "the language model trains in stage 2"
    assert not _same(after[4][0], after[6][0]), "the tower trains again in stage 3"


def test_optimizer_state_is_reset_at_every_stage_start(staged: Path) -> None:
    # one optimizer update per step (8 prompts x 2 responses = one mini-batch); Adam counts updates per parameter
    assert _optimizer_steps(staged, 1) == {1.0} and _optimizer_steps(staged, 2) == {2.0}
    assert max(_optimizer_steps(staged, 3)) == 1.0  # reset when stage 2 began (the frozen tower's state: 0 updates)
    assert max(_optimizer_steps(staged, 4)) == 2.0
    assert _optimizer_steps(staged, 5) == {1.0}  # reset again; the tower trains again


def test_reference_equals_the_policy_right_after_a_refresh(staged: Path) -> None:
    kl = {line["step"]: line["kl_loss"] for line in _steps(staged)}
    # the first update of a stage compares the policy with its reference: a refresh makes them equal (the KL left is
    # bf16 rounding of the same weights, as at step 1, where the reference is the base model), while stage 3, which
    # keeps stage 2's reference, starts 2 updates away from it: a KL of the size the other updates show
    assert kl[3] < kl[2] / 50 and kl[1] < kl[2] / 50
    assert kl[5] > 50 * max(kl[1], kl[3])


def test_stage_exports_reload_as_the_trained_weights(staged: Path) -> None:
    from transformers import AutoProcessor

    for name, step in zip(STAGES, (2, 4, 6), strict=True):
        folder = staged / "stages" / name
        model = _model(folder)
        trained = _actor(staged, step)
        reloaded = model.state_dict()
        assert set(trained) <= set(reloaded)
        for key, value in trained.items():  # exports are bfloat16, as EasyR1's merger writes
            assert torch.equal(reloaded[key], value.to(torch.bfloat16).float()), key
        assert AutoProcessor.from_pretrained(folder).image_processor is not None


def test_kill_and_resume_writes_the_uninterrupted_run_files(
    staged: Path, resumed: tuple[Path, list[dict[str, Any]], Any]
) -> None:
    root, steps_at_kill, tracker = resumed
    assert [line["step"] for line in steps_at_kill] == [1, 2, 3, 4]  # step 4 is past the checkpoint: dropped, redone
    assert tracker["last_global_step"] == 3 and (root / "global_step_3" / "dataloader.pt").is_file()
    assert _steps(root) == _steps(staged)
    assert _same(_actor(root, 6), _actor(staged, 6))
    summary, expected = (json.loads((path / "curriculum_summary.json").read_text()) for path in (root, staged))
    for left, right in zip(summary["stages"], expected["stages"], strict=True):
        left.pop("checkpoint"), right.pop("checkpoint")
    assert summary == expected


def test_chained_run_writes_the_one_run_steps_file_and_summary(chained: Path, staged: Path) -> None:
    steps, expected = _steps(chained), _steps(staged)
    assert [line["step"] for line in steps] == list(range(1, 7))
    for line, reference in zip(steps, expected, strict=True):  # the chain trains the one-run plan's batches
        assert (line["stage"], line["stage_index"], line["sample_ids"]) == (
            reference["stage"], reference["stage_index"], reference["sample_ids"],
        )  # fmt: skip
    assert steps[0] == expected[0]  # the same model, batch and sampling seed: the same first step
    summary = json.loads((chained / "curriculum_summary.json").read_text())
    assert summary["completed_steps"] == 6 and summary["backend"] == "easyr1"
    assert (
        summary["plan_fingerprint"] == json.loads((staged / "curriculum_summary.json").read_text())["plan_fingerprint"]
    )
    for entry, name in zip(summary["stages"], STAGES, strict=True):
        assert (entry["name"], entry["steps"], entry["complete"]) == (name[3:], 2, True)
        assert entry["checkpoint"] == str(chained / "stages" / name)
        assert entry["validation"] and "val/reward_score" in entry["validation"]


def test_tiny_qwen3_vl_trains_every_stage(staged_qwen3: Path, qwen3_model_dir: Path) -> None:
    from transformers import AutoProcessor

    steps = _steps(staged_qwen3)
    assert [(line["step"], line["stage"]) for line in steps] == [
        (1, "perception"), (2, "text_reasoning"), (3, "visual_reasoning"),
    ]  # fmt: skip
    assert all(0.0 <= line["reward"] <= 1.0 and line["kl_loss"] is not None for line in steps)
    assert any(line["reward"] > 0 for line in steps)  # warm-started: rewards earned, advantages non-zero
    assert any(low < 0 < high for low, high in _advantage_ranges(staged_qwen3).values())
    base = _model(qwen3_model_dir)
    assert type(base).__name__ == "Qwen3VLForConditionalGeneration"
    after = {step: _split(_actor(staged_qwen3, step)) for step in (1, 2, 3)}
    assert not _same({key: base.state_dict()[key] for key in after[1][0]}, after[1][0]), "tower trains in stage 1"
    assert _same(after[1][0], after[2][0]) and not _same(after[1][1], after[2][1]), "tower frozen in stage 2"
    assert not _same(after[2][0], after[3][0]), "the tower trains again in stage 3"
    for name, step in zip(STAGES, (1, 2, 3), strict=True):
        folder = staged_qwen3 / "stages" / name
        reloaded = _model(folder).state_dict()
        for key, value in _actor(staged_qwen3, step).items():
            assert torch.equal(reloaded[key], value.to(torch.bfloat16).float()), key
        assert type(AutoProcessor.from_pretrained(folder)).__name__ == "Qwen3VLImageOnlyProcessor"


def test_chained_stages_start_from_the_previous_stage_weights(chained: Path, model_dir: Path) -> None:
    from omegaconf import OmegaConf

    from vlm_capcurriculum.integrations.easyr1.layout import has_weights

    sources = [str(model_dir)] + [str(chained / "stages" / name) for name in STAGES[:2]]
    for name, source in zip(STAGES, sources, strict=True):
        run_dir = chained / "chained" / name
        stage_config = OmegaConf.load(run_dir / "config.yaml")
        assert stage_config.worker.actor.model.model_path == source
        assert json.loads((run_dir / "easyr1" / "checkpoint_tracker.json").read_text())["last_global_step"] == 2
        assert has_weights(chained / "stages" / name)
    exports = [_split(_model(chained / "stages" / name).state_dict()) for name in STAGES]
    base = _split(_model(model_dir).state_dict())
    # stage 2 froze the tower (EasyR1's own freeze_vision_tower): its tower is stage 1's, not the base model's
    assert _same(exports[1][0], exports[0][0]) and not _same(exports[0][0], base[0])
    assert not _same(exports[1][1], exports[0][1]) and not _same(exports[2][0], exports[1][0])
