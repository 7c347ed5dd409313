"""The entry point: EasyR1's config plus the curriculum block, plan-time refusals, --dry-run, and the recipe path."""

from __future__ import annotations

import json
from pathlib import Path

import easyr1_lane as lane
import pytest

from vlm_capcurriculum.cli import main as vlmcc
from vlm_capcurriculum.curriculum import Mode, plan_curriculum
from vlm_capcurriculum.integrations.easyr1.config import ConfigError, check_config, check_plan, load_run_config
from vlm_capcurriculum.integrations.easyr1.main import main, prepare
from vlm_capcurriculum.prompts import THINK_BOXED

REPO = lane.REPO


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    lane.register_processor()
    return lane.save_model_dir(tmp_path_factory.mktemp("tiny") / "model", processor=True)


@pytest.fixture
def write_config(tmp_path, model_dir, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.chdir(REPO)

    def write(name: str = "run", stages=None, **sections) -> str:  # stages: {index: {key: value}} merged into stages
        config = lane.sample_run_config(model_dir, tmp_path / name, **sections)
        for index, changes in (stages or {}).items():
            stage = config["curriculum"]["stages"][index]
            overrides = changes.pop("overrides", {})
            stage.update(changes)
            stage["overrides"].update(overrides)
        return str(lane.write_yaml(config, tmp_path / f"{name}.yaml"))

    return write


def test_easyr1_config_with_the_curriculum_spec(write_config, tmp_path):
    run = load_run_config([f"config={write_config(stages={1: {'epochs': 2}})}", "worker.rollout.n=4"])
    assert run.spec.mode is Mode.staged and [stage.epochs for stage in run.spec.stages] == [2, 2, 1]
    assert run.execution == "single"
    assert run.config.worker.rollout.n == 4
    assert run.config.worker.actor.kl_coef == run.config.algorithm.kl_coef  # EasyR1's post_init ran
    assert "worker.rollout.n" in run.explicit and "data.rollout_batch_size" not in run.explicit
    assert run.config.data.format_prompt == str(THINK_BOXED)
    chained = load_run_config([f"config={write_config(stages={1: {'epochs': 2}})}", "curriculum.execution=chained"])
    assert chained.execution == "chained" and chained.spec == run.spec


def test_curriculum_errors_name_the_key(write_config):
    with pytest.raises(ConfigError, match=r"curriculum\.stages\[0\]\.epoch: unknown key; did you mean 'epochs'"):
        load_run_config([f"config={write_config(stages={0: {'epoch': 3}})}"])
    with pytest.raises(ConfigError, match=r"`curriculum\.execution`: 'parallel'"):
        load_run_config([f"config={write_config()}", "curriculum.execution=parallel"])
    with pytest.raises(ConfigError, match="add a curriculum: block"):
        load_run_config(["worker.rollout.n=5"])
    with pytest.raises(ConfigError, match=r"`data\.train_file`"):
        load_run_config([f"config={write_config()}", "data.train_file=x"])  # EasyR1's strict keys still apply


def test_our_reward_is_the_default_and_repository_files_are_found_from_anywhere(write_config, tmp_path, monkeypatch):
    config_file = write_config()
    monkeypatch.chdir(tmp_path)  # the config names the shipped think_boxed.jinja, not a path under this directory
    run = load_run_config([f"config={config_file}"])
    assert run.config.data.format_prompt == str(THINK_BOXED)
    reward = run.config.worker.reward  # the config leaves it unset: ours, found in the repository
    assert (reward.reward_function, reward.reward_function_name) == (
        str(REPO / "reward_fns" / "capcurriculum.py"),
        "compute_score",
    )
    with pytest.raises(ConfigError, match=r"nowhere\.py is neither a file here"):
        load_run_config([f"config={config_file}", "worker.reward.reward_function=nowhere.py:score"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("algorithm.online_filtering=true", "online_filtering=true` is not supported with a curriculum"),
        ("data.mini_rollout_batch_size=4", "mini_rollout_batch_size` is not supported with a curriculum"),
        ("data.rollout_batch_size=16", r"rollout_batch_size=16` contradicts `curriculum\.batch_size=8`"),
        ("data.train_files=x.jsonl", "the curriculum's stages name the training data"),
    ],
)
def test_settings_that_contradict_a_curriculum_are_refused(write_config, override, message):
    run = load_run_config([f"config={write_config()}", override])
    with pytest.raises(ConfigError, match=message):
        check_config(run)


def test_stage_knobs_easyr1_cannot_change_mid_run_fail_at_plan_time(write_config):
    argv = [f"config={write_config(stages={1: {'overrides': {'rollout_n': 8}}})}"]
    run = load_run_config(argv)
    _, plan = plan_curriculum(run.spec)
    with pytest.raises(ConfigError) as error:
        check_plan(run, plan)
    message = str(error.value)
    assert "stage 'text_reasoning' (from step 9) sets rollout_n=8" in message
    assert "fold worker.rollout.n into their batch sizes once, at start" in message
    assert "curriculum.execution=chained" in message
    check_plan(load_run_config([*argv, "curriculum.execution=chained"]), plan)  # a fresh run per stage: fine

    no_kl = load_run_config([f"config={write_config()}", "algorithm.disable_kl=true"])
    with pytest.raises(ConfigError, match=r"refresh_reference: algorithm\.disable_kl=true: the run has no reference"):
        check_plan(no_kl, plan_curriculum(no_kl.spec)[1])
    no_stage_overrides = {i: {"overrides": {"vision_tower": None}} for i in range(3)}
    merged_config = write_config("merged", stages=no_stage_overrides)
    merged = load_run_config([f"config={merged_config}", "curriculum.execution=chained", "curriculum.mode=merged"])
    with pytest.raises(ConfigError, match="mode merged trains one phase: use execution=single"):
        check_config(merged)


def test_prepare_writes_the_data_file_and_sets_easyr1_from_the_plan(write_config, tmp_path):
    run = load_run_config([f"config={write_config()}"])
    prepared = prepare(run)
    config, plan = run.config, prepared.plan
    assert (config.trainer.max_steps, plan.total_steps) == (16, 16)
    assert config.data.rollout_batch_size == 8
    assert (config.data.prompt_key, config.data.answer_key, config.data.image_key) == ("problem", "answer", "images")
    assert config.data.train_files == str(tmp_path / "run" / "curriculum" / "train.jsonl")
    assert config.data.val_files == str(tmp_path / "run" / "curriculum" / "val.jsonl")
    rows = [json.loads(line) for line in Path(config.data.train_files).read_text().splitlines()]
    assert [row["curriculum_index"] for row in rows] == list(range(108))
    assert json.loads(Path(prepared.layout.plan_file).read_text())["fingerprint"] == plan.fingerprint
    assert prepared.vision == "per_stage" and config.worker.actor.fsdp.use_orig_params is True
    all_frozen = {i: {"overrides": {"vision_tower": "frozen"}} for i in range(3)}
    frozen = load_run_config([f"config={write_config('frozen', stages=all_frozen)}"])
    assert prepare(frozen).vision == "frozen"
    assert frozen.config.worker.actor.model.freeze_vision_tower is True  # EasyR1's own freeze (merged baseline)
    assert frozen.config.worker.actor.fsdp.use_orig_params is False
    with pytest.raises(ConfigError, match="let the stages decide"):  # EasyR1's freeze cannot be undone mid-run
        prepare(load_run_config([f"config={write_config()}", "worker.actor.model.freeze_vision_tower=true"]))


def test_overlong_prompts_are_dropped_counted_and_left_out_of_the_plan(write_config):
    full = prepare(load_run_config([f"config={write_config('full')}"]))
    assert full.dropped_overlong == 0
    # prompts of the samples are ~350-420 tokens with the format prompt: a limit of 380 drops some of each stage
    run = load_run_config([f"config={write_config('short')}", "data.max_prompt_length=380"])
    prepared = prepare(run)
    kept = len(prepared.data)
    assert 0 < prepared.dropped_overlong == 108 - kept
    assert prepared.plan.dataset_size == kept
    counted = sum(stage.report.notes["dropped_overlong_prompt"] for stage in prepared.data.stages)
    assert counted == prepared.dropped_overlong
    rows = Path(run.config.data.train_files).read_text().splitlines()
    assert len(rows) == kept  # the file is the new global index space
    assert any("overlong-prompt filter" in note for note in prepared.notes)
    with pytest.raises(ConfigError, match="every training prompt is longer"):
        prepare(load_run_config([f"config={write_config('none')}", "data.max_prompt_length=16"]))


def test_resuming_checkpoints_of_another_plan_is_refused(write_config, tmp_path):
    config_file = write_config()
    prepare(load_run_config([f"config={config_file}"]))
    (tmp_path / "run" / "checkpoint_tracker.json").write_text(json.dumps({"last_global_step": 3}))
    same = prepare(load_run_config([f"config={config_file}"]))  # same plan: fine
    plan_file = Path(same.layout.plan_file)
    with pytest.raises(ConfigError, match="holds checkpoints of another plan"):
        prepare(load_run_config([f"config={config_file}", "curriculum.seed=2"]))
    assert json.loads(plan_file.read_text())["fingerprint"] == same.plan.fingerprint  # kept for the right plan
    fresh = load_run_config([f"config={config_file}", "curriculum.seed=2", "trainer.find_last_checkpoint=false"])
    assert prepare(fresh).plan.fingerprint != same.plan.fingerprint  # starting over is allowed


def test_dry_run_builds_easyr1_config_and_loaders_without_ray(write_config, capsys):
    assert main([f"config={write_config()}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "curriculum plan: staged, batch 8, seed 1" in out
    assert "trainer.max_steps=16" in out and "vision tower: per_stage" in out and "use_orig_params=True" in out
    assert "train loader 16 batches of 8 (= steps)" in out and "validation loader 36 prompts" in out
    run = load_run_config([f"config={write_config()}"])
    first = list(plan_curriculum(run.spec)[1].batch(1))
    assert f"step 1 trains global indices {first}" in out


def test_dry_run_errors_are_one_line(write_config, capsys):
    assert main([f"config={write_config()}", "algorithm.online_filtering=true", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("python -m vlm_capcurriculum.integrations.easyr1: error:")


def test_chained_dry_run_lists_the_stage_runs(write_config, tmp_path, capsys):
    assert main([f"config={write_config()}", "curriculum.execution=chained", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for index, name in enumerate(("perception", "text_reasoning", "visual_reasoning"), start=1):
        assert f"stage {index}: " in out and f"{tmp_path}/run/stages/0{index}-{name}" in out


def test_the_recipe_dry_run_goes_through_easyr1(model_dir, monkeypatch, capsys, tmp_path):
    """`vlmcc train --config recipes/config.yaml --dry-run` (default backend: EasyR1) on the samples."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("VLMCC_OUTPUT_DIR", str(tmp_path))
    argv = [
        "train",
        "--config",
        str(REPO / "recipes" / "config.yaml"),
        f"model.path={model_dir}",
        "backend.easyr1.data.min_pixels=3136",
        "backend.easyr1.data.max_pixels=12544",
        "+backend.easyr1.data.filter_overlong_prompts_workers=1",  # a key the group does not list: +
        "backend.easyr1.worker.actor.micro_batch_size_per_device_for_experience=8",
        "--dry-run",
    ]
    assert vlmcc(argv) == 0
    out = capsys.readouterr().out
    # the paper's stage epochs 15/15/15 over 36 samples per stage, 8 per step: 60 + 60 + 60 steps
    assert f"reward {REPO / 'reward_fns' / 'capcurriculum.py'}:compute_score" in out  # the recipe's, from the repo
    assert "trainer.max_steps=180" in out and "worker.rollout.n=5" in out and "vision tower: per_stage" in out
    assert "│ 1 │ perception" in out and "1-60" in out and "61-120" in out and "121-180" in out
    assert not list(tmp_path.iterdir())  # a dry run writes nothing where the real run would
