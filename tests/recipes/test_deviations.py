"""The README's table "Paper, reference scripts and ours" says what the recipes really run.

Each backend cell is computed here from the composed recipe of that backend (and, for verl, verl's own defaults
where our recipe leaves a key to verl), and must equal the README's cell; the reference column's stage epochs come
from `curriculum=reference_scripts`. Change a recipe and this fails until the table says so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from testkit import REPO

from vlm_capcurriculum.config import load_config
from vlm_capcurriculum.curriculum import StageData, build_plan, parse_curriculum

BACKENDS = ("easyr1", "verl", "trl")
RELEASED_ROWS = (3072, 12800, 15872)  # the released stage files (paper Sec. 4.1: 6 / 25 / 31 steps per epoch)


def readme_table() -> dict[str, dict[str, str]]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Paper, reference scripts and ours", 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) != len(header):
            break  # the next table
        rows[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return rows


def compose(backend: str, *overrides: str):
    return load_config(REPO / "recipes" / "config.yaml", [f"backend={backend}", *overrides])


def verl_default(path: str):
    import importlib.util

    [package] = importlib.util.find_spec("verl").submodule_search_locations  # its files, without importing verl
    node = yaml.safe_load((Path(package) / "trainer" / "config" / "_generated_ppo_trainer.yaml").read_text())
    for key in path.split("."):
        node = node[key]
    return node


def steps(config) -> str:
    spec = parse_curriculum(config.curriculum)
    plan = build_plan(spec, [StageData(n) for n in RELEASED_ROWS[: len(spec.stages)]])
    return "/".join(str(stage.steps) for stage in plan.stages)


def cells(backend: str) -> dict[str, str]:
    """The backend's column of the table, from its composed recipe."""
    c = compose(backend)
    paper_batch = compose(backend, "curriculum.batch_size=512", "train.global_batch_size=128")
    merged = compose(backend, "curriculum=merged", "curriculum.batch_size=512", "train.global_batch_size=128")
    out = {
        "stage epochs": "/".join(str(stage.epochs) for stage in c.curriculum.stages),
        "steps on the released data (staged; merged)": f"{steps(paper_batch)}; {steps(merged)}",
    }
    if backend == "easyr1":
        e = c.backend.easyr1
        actor = e.worker.actor
        out |= {
            "prompts per step x group": f"{paper_batch.backend.easyr1.data.rollout_batch_size} x {e.worker.rollout.n}",
            "actor mini-batch (prompts)": str(paper_batch.backend.easyr1.worker.actor.global_batch_size),
            "lr; weight decay": f"{actor.optim.lr}; {actor.optim.weight_decay}",
            "KL loss; coefficient": f"{e.algorithm.kl_penalty}; {e.algorithm.kl_coef}",
            "clip low/high; dual clip": f"{actor.clip_ratio_low}/{actor.clip_ratio_high}; {actor.clip_ratio_dual}",
            "weights; optimizer": f"{actor.fsdp.torch_dtype}; {actor.optim.strategy}",
            "pixels per image": f"{e.data.min_pixels}-{e.data.max_pixels}, image resized",
            "prompts over max_prompt_length": "dropped, counted" if e.data.filter_overlong_prompts else "kept",
            "validation before training": "yes" if e.trainer.val_before_train else "no",
            "stages per run": "one run (`backend.execution=chained`: one per stage)"
            if c.backend.execution == "single"
            else "one run per stage",
        }
    elif backend == "verl":
        v = c.backend.overrides
        actor = v.actor_rollout_ref.actor
        assert "model_dtype" not in actor.get("fsdp_config", {}) and "optimizer" not in actor.optim  # verl's defaults
        dtype = verl_default("actor_rollout_ref.actor.fsdp_config.model_dtype")
        optim = verl_default("actor_rollout_ref.actor.optim")
        pixels = v.data.mm_processor_kwargs
        out |= {
            "prompts per step x group": f"{paper_batch.backend.overrides.data.train_batch_size} x "
            f"{v.actor_rollout_ref.rollout.n}",
            "actor mini-batch (prompts)": str(
                paper_batch.backend.overrides.actor_rollout_ref.actor.ppo_mini_batch_size
            ),
            "lr; weight decay": f"{actor.optim.lr}; {actor.optim.weight_decay}",
            "KL loss; coefficient": f"{actor.kl_loss_type}; {actor.kl_loss_coef}",
            "clip low/high; dual clip": f"{actor.clip_ratio_low}/{actor.clip_ratio_high}; {actor.clip_ratio_c}",
            "weights; optimizer": f"{dtype}; {optim['optimizer_impl'].split('.')[0]} {optim['optimizer']}",
            "pixels per image": f"{pixels.min_pixels}-{pixels.max_pixels}, processor bounds",
            "prompts over max_prompt_length": "dropped, counted" if c.backend.get("drop_overlong_prompts") else "error",
            "validation before training": "yes" if v.trainer.val_before_train else "no",
            "stages per run": "one run",
        }
    else:
        g = c.backend.grpo
        assert c.backend.dtype == "auto" and "optim" not in g  # bf16 on a GPU, fp32 on a CPU; TrainingArguments' AdamW
        out |= {
            "prompts per step x group": f"{paper_batch.curriculum.batch_size} x {g.num_generations}",
            "actor mini-batch (prompts)": str(paper_batch.train.global_batch_size),
            "lr; weight decay": f"{g.learning_rate}; {g.weight_decay}",
            "KL loss; coefficient": f"k3 (= {c.train.kl_penalty}); {g.beta}",
            "clip low/high; dual clip": f"{g.epsilon}/{g.epsilon_high}; "
            + ("none" if c.train.clip_ratio_dual is None else str(c.train.clip_ratio_dual)),
            "weights; optimizer": "bf16 on a GPU, fp32 on a CPU; torch AdamW",
            "pixels per image": f"{c.train.min_pixels}-{c.train.max_pixels}, image resized",
            "prompts over max_prompt_length": "dropped, counted" if c.train.max_prompt_length else "kept",
            "validation before training": "yes" if c.backend.validation.before_train else "no",
            "stages per run": "one run",
        }
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_columns_match_the_recipes(repo_root: Path, backend: str) -> None:
    table = readme_table()
    column = {"easyr1": "EasyR1", "verl": "verl", "trl": "TRL"}[backend]
    computed = cells(backend)
    assert set(computed) == set(table), "every row is checked"
    for setting, value in computed.items():
        assert table[setting][column] == value, f"README row {setting!r}, column {column}"


def test_reference_and_paper_columns(repo_root: Path) -> None:
    table = readme_table()
    reference = compose("easyr1", "curriculum=reference_scripts", "curriculum.batch_size=512")
    assert table["stage epochs"]["reference scripts"] == "/".join(str(s.epochs) for s in reference.curriculum.stages)
    assert table["steps on the released data (staged; merged)"]["reference scripts"].split(";")[0] == steps(reference)
    paper = compose("easyr1", "curriculum.batch_size=512")
    assert table["steps on the released data (staged; merged)"]["paper"].split(";")[0] == steps(paper)
    assert re.fullmatch(r"\d+/\d+/\d+", table["stage epochs"]["paper"])
