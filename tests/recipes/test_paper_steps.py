"""`vlmcc plan` on stage files the size of the released data gives the paper's step counts (Sec. 4.1).

The released stages hold 3,072 / 12,800 / 15,872 questions; at 512 prompts per step and the paper's 15 epochs per
stage that is 90 / 375 / 465 steps, 930 in all, and the merged baseline trains 930. The reference scripts'
16 epochs in stage 1 (`curriculum=reference_scripts`) give 96 / 375 / 465.
"""

from __future__ import annotations

import json
import shutil

import pytest
from testkit import REPO

from vlm_capcurriculum.cli import main

PAPER_ROWS = {"perception": 3072, "text_reasoning": 12800, "visual_reasoning": 15872}


@pytest.fixture(scope="module")
def paper_sized_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("paper_sized")
    shutil.copy(REPO / "data_recipes" / "samples" / "images" / "perception" / "p000.png", root / "img.png")
    for stage, rows in PAPER_ROWS.items():
        image = stage != "text_reasoning"
        with (root / f"{stage}.jsonl").open("w") as out:
            for i in range(rows):
                row = {
                    "id": f"{stage}-{i}",
                    "problem": ("<image>" if image else "") + f"Question {i}?",
                    "answer": "A" if stage == "perception" else str(i),
                    "images": ["img.png"] if image else [],
                }
                out.write(json.dumps(row) + "\n")
    return {
        "VLMCC_STAGE1_TRAIN": str(root / "perception.jsonl"),
        "VLMCC_STAGE1_IMAGE_DIR": str(root),
        "VLMCC_STAGE2_TRAIN": str(root / "text_reasoning.jsonl"),
        "VLMCC_STAGE3_TRAIN": str(root / "visual_reasoning.jsonl"),
        "VLMCC_STAGE3_IMAGE_DIR": str(root),
    }


def plan_json(env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys, *overrides: str) -> dict:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    assert main(["plan", "--config", "recipes/config.yaml", "data=paper", *overrides, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("curriculum", "steps"),
    [("staged", [90, 375, 465]), ("reference_scripts", [96, 375, 465]), ("merged", [930])],
)
def test_paper_sized_data_plans_the_papers_steps(paper_sized_env, monkeypatch, capsys, curriculum, steps) -> None:
    plan = plan_json(paper_sized_env, monkeypatch, capsys, f"curriculum={curriculum}")
    assert plan["batch_size"] == 512
    assert [stage["steps"] for stage in plan["stages"]] == steps
    assert plan["total_steps"] == sum(steps)
    assert [d["rows_kept"] for d in plan["data"]] == list(PAPER_ROWS.values())
