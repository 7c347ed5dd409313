"""The EasyR1 backend group and the headline-run scripts: paper values, data from the environment, clear errors.

No EasyR1 here (CI has volcengine verl as ``verl``): these check what the recipes hand to the EasyR1 entry point;
the lane (tests/integrations/easyr1) runs the same recipes through EasyR1's real config and loaders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import REPO

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.integrations.easyr1.launch import easyr1_node
from vlm_capcurriculum.integrations.easyr1.layout import resolve_function_path
from vlm_capcurriculum.launch import LaunchError
from vlm_capcurriculum.prompts import THINK_BOXED, PromptNotFoundError, resolve_prompt

PAPER_ENV = {
    "VLMCC_STAGE1_TRAIN": "/data/perception.jsonl",
    "VLMCC_STAGE1_IMAGE_DIR": "/data/perception_images",
    "VLMCC_STAGE2_TRAIN": "/data/text.jsonl",
    "VLMCC_STAGE3_TRAIN": "/data/visual.jsonl",
    "VLMCC_STAGE3_IMAGE_DIR": "/data/visual_images",
}


def compose(*overrides: str):  # type: ignore[no-untyped-def]
    return load_config(REPO / "recipes" / "config.yaml", list(overrides))


@pytest.fixture
def paper_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PAPER_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("VLMCC_STAGE3_VAL", raising=False)


def test_easyr1_is_the_default_backend() -> None:
    config = compose()
    assert config.backend.name == "easyr1"
    assert config.backend.launcher == "vlm_capcurriculum.integrations.easyr1.launch:launch"
    assert config.backend.execution == "single"


@pytest.mark.usefixtures("paper_env")
@pytest.mark.parametrize("model", ["qwen2_5_vl_7b", "qwen3_vl_8b"])
def test_paper_hyperparameters_reach_easyr1(model: str) -> None:
    node = easyr1_node(compose(f"model={model}", "data=paper"))
    data, algorithm, actor, rollout = (
        node["data"],
        node["algorithm"],
        node["worker"]["actor"],
        node["worker"]["rollout"],
    )
    assert actor["optim"]["lr"] == 1e-6  # reference config.yaml
    assert (algorithm["use_kl_loss"], algorithm["kl_penalty"], algorithm["kl_coef"]) == (True, "low_var_kl", 1e-2)
    assert rollout["n"] == 5  # group size, paper Sec. 4.1
    assert data["max_response_length"] == 2048 and data["max_prompt_length"] == 2048
    assert data["rollout_batch_size"] == node["curriculum"]["batch_size"] == 512
    assert actor["global_batch_size"] == 128
    assert node["worker"]["reward"]["reward_function_kwargs"] == {"format_weight": 0.1}
    assert node["worker"]["reward"]["reward_function"] == "reward_fns/capcurriculum.py:compute_score"
    assert actor["model"]["model_path"] == {"qwen2_5_vl_7b": "Qwen/Qwen2.5-VL-7B-Instruct",
                                            "qwen3_vl_8b": "Qwen/Qwen3-VL-8B-Instruct"}[model]  # fmt: skip
    assert actor["model"]["freeze_vision_tower"] is False  # the stages decide
    assert [stage["epochs"] for stage in node["curriculum"]["stages"]] == [15, 15, 15]
    assert [stage["overrides"]["vision_tower"] for stage in node["curriculum"]["stages"]] == [
        "trainable",
        "frozen",
        "trainable",
    ]
    assert node["curriculum"]["execution"] == "single"
    assert data["val_files"] == "hiyouga/geometry3k@test"  # the reference scripts' validation set
    assert node["trainer"]["experiment_name"] == f"{model}_staged"


@pytest.mark.usefixtures("paper_env")
def test_merged_baseline_freezes_the_vision_tower_run_wide() -> None:
    node = easyr1_node(compose("model=qwen2_5_vl_7b", "curriculum=merged", "data=paper"))
    curriculum = node["curriculum"]
    assert curriculum["mode"] == "merged" and curriculum["overrides"]["vision_tower"] == "frozen"
    assert all("overrides" not in stage for stage in curriculum["stages"])


def test_environment_and_execution_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLMCC_BACKBONE_QWEN3_VL_8B", "/models/qwen3")
    monkeypatch.setenv("VLMCC_GPUS_PER_NODE", "4")
    node = easyr1_node(compose("backend.execution=chained"))
    assert node["worker"]["actor"]["model"]["model_path"] == "/models/qwen3"
    assert node["trainer"]["n_gpus_per_node"] == 4
    assert node["curriculum"]["execution"] == "chained"
    assert node["data"]["rollout_batch_size"] == node["worker"]["actor"]["global_batch_size"] == 8  # the samples


def test_unset_data_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PAPER_ENV:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(LaunchError, match="environment variable VLMCC_STAGE1_TRAIN is not set"):
        easyr1_node(compose("data=paper"))


@pytest.mark.parametrize("model", ["internvl3_8b", "internvl3_5_8b"])
def test_internvl_composes_for_easyr1_and_ulysses_is_refused(model: str) -> None:
    node = easyr1_node(compose(f"model={model}"))
    # padding-free stays on, as in the reference scripts: our worker makes it right for InternVL (internvl.py)
    assert node["worker"]["actor"]["padding_free"] is True
    with pytest.raises(LaunchError, match=r"ulysses_size=2: Ulysses sequence parallelism is not wired for InternVL"):
        easyr1_node(compose(f"model={model}", "+backend.easyr1.worker.actor.ulysses_size=2"))


def test_without_easyr1_the_dry_run_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # CI installs volcengine verl, which also calls itself `verl`: EasyR1 is absent
    assert main(["train", "--config", str(REPO / "recipes" / "config.yaml"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("vlmcc train: error: backend 'easyr1': EasyR1 is not installed.")


def test_repository_files_resolve_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    prompt = resolve_prompt("think_boxed.jinja")  # recipes name the shipped prompt from any directory
    assert prompt == THINK_BOXED
    text = prompt.read_text(encoding="utf-8")
    # the paper's instruction, with the example in the same <think> tags the reward checks (vlm_capcurriculum.prompts)
    assert "enclosed within <think> </think> tags" in text and "<think> reasoning here </think>" in text
    assert "<thinking>" not in text and text.startswith("{{ content | trim }}")
    assert resolve_prompt("vlm_capcurriculum/prompts/think_boxed.jinja") == THINK_BOXED  # repository-relative
    with pytest.raises(PromptNotFoundError, match=r"mine\.jinja: no such file"):
        resolve_prompt("mine.jinja")
    (tmp_path / "mine.py").write_text("def f(x): return x\n")
    assert resolve_function_path("mine.py:f", what="reward") == f"{tmp_path / 'mine.py'}:f"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.py is neither a file here"):
        resolve_function_path("nowhere.py:f", what="reward")


def _script(name: str, *args: str, **env: str) -> list[str]:
    """Run a recipe script with PYTHON=echo: the command line it would run."""
    environment = {key: value for key, value in os.environ.items() if key != "VLMCC_RUN_NAME"}
    environment.update(PYTHON="echo", **env)
    result = subprocess.run(
        ["bash", str(REPO / "recipes" / name), *args], capture_output=True, text=True, env=environment, check=True
    )
    return result.stdout.split()


@pytest.mark.parametrize(
    ("script", "model", "curriculum"),
    [
        ("qwen2_5vl_7b_staged.sh", "qwen2_5_vl_7b", "staged"),
        ("qwen3vl_8b_staged.sh", "qwen3_vl_8b", "staged"),
        ("qwen2_5vl_7b_merged.sh", "qwen2_5_vl_7b", "merged"),
        ("qwen3vl_8b_merged.sh", "qwen3_vl_8b", "merged"),
        ("internvl3_8b_staged.sh", "internvl3_8b", "staged"),
        ("internvl3_8b_merged.sh", "internvl3_8b", "merged"),
        ("internvl3_5_8b_staged.sh", "internvl3_5_8b", "staged"),
        ("internvl3_5_8b_merged.sh", "internvl3_5_8b", "merged"),
    ],
)
def test_headline_scripts_compose_the_recipe(script: str, model: str, curriculum: str) -> None:
    words = _script(script, "--dry-run")
    assert words[:4] == ["-m", "vlm_capcurriculum", "train", "--config"]
    assert words[4] == str(REPO / "recipes" / "config.yaml")
    assert words[5:] == [
        f"model={model}",
        f"curriculum={curriculum}",
        "data=paper",
        "backend=easyr1",
        f"backend.easyr1.trainer.experiment_name={model}_{curriculum}",
        "--dry-run",
    ]


def test_ablations_are_curriculum_choices_of_the_staged_script() -> None:
    words = _script("qwen3vl_8b_staged.sh", "curriculum=order_213", "backend.execution=chained")
    assert "curriculum=order_213" in words and "curriculum=staged" not in words
    assert "backend.easyr1.trainer.experiment_name=qwen3_vl_8b_order_213" in words
    assert words[-1] == "backend.execution=chained"
    named = _script("qwen3vl_8b_staged.sh", "data=samples", VLMCC_RUN_NAME="try1")
    assert "data=samples" in named and "backend.easyr1.trainer.experiment_name=try1" in named
    other = _script("qwen3vl_8b_staged.sh", "backend=trl")
    assert "backend=trl" in other and not any(word.startswith("backend.easyr1") for word in other)


def test_scripts_reach_the_easyr1_backend_without_easyr1_installed() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), **PAPER_ENV}
    result = subprocess.run(
        ["bash", str(REPO / "recipes" / "qwen3vl_8b_staged.sh"), "--dry-run"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "backend 'easyr1': EasyR1 is not installed." in result.stderr
