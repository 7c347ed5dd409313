"""Each user mistake ends in one line naming the cause and the key, file, line or command that fixes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit import REPO

from vlm_capcurriculum.cli import main

CONFIG = "recipes/config.yaml"


pytestmark = pytest.mark.usefixtures("repo_root")


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_outside_numpys_range_fails_at_plan_time(seed: str, capsys) -> None:
    assert main(["plan", "--config", CONFIG, f"curriculum.seed={seed}"]) == 2
    line = error_line(capsys)
    assert "curriculum.seed" in line and "4294967295" in line and seed in line


def test_the_largest_seed_is_accepted(capsys) -> None:
    assert main(["plan", "--config", CONFIG, f"curriculum.seed={2**32 - 1}"]) == 0


def test_an_empty_stage_file_is_named_not_blamed_on_the_batch_size(tmp_path: Path, capsys) -> None:
    empty = tmp_path / "text.jsonl"
    empty.write_text("")
    assert main(["plan", "--config", CONFIG, f"curriculum.stages.1.train_files=[{empty}]"]) == 2
    line = error_line(capsys)
    assert "stage 'text_reasoning' has no records" in line and "they hold no rows" in line and str(empty) in line
    assert "curriculum.stages[1].train_files" in line and "batch" not in line


def test_a_stage_file_whose_rows_are_all_bad_says_so_in_lenient_mode(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "text.jsonl"
    bad.write_text('{"id": "x"}\n{"id": "y"}\n')
    assert main(["plan", "--config", CONFIG, "--lenient", f"curriculum.stages.1.train_files=[{bad}]"]) == 2
    assert "all 2 rows were skipped as bad" in error_line(capsys)


def test_every_bad_row_is_listed_capped_with_a_count(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "text.jsonl"
    good = {"id": "ok", "problem": "1+1?", "answer": "2"}
    rows = [json.dumps(good)] + [json.dumps({"id": f"b{i}", "problem": f"{i}?"}) for i in range(30)]
    bad.write_text("\n".join(rows) + "\n")
    assert main(["plan", "--config", CONFIG, f"curriculum.stages.1.train_files=[{bad}]"]) == 2
    err = capsys.readouterr().err
    assert "30 bad row field(s):" in err
    for line_number in range(2, 22):  # the first 20 are located by file and line
        assert f"{bad}:{line_number}: answer: missing" in err
    assert "... and 10 more (missing_field 10)" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("vlmcc plan: error:") and f"{bad}:2" in last and "(and 29 more" in last


def test_a_stage_name_typo_is_a_warning_and_an_error_under_strict(capsys) -> None:
    typo = "curriculum.stages.1.name=text_reasonign"
    assert main(["plan", "--config", CONFIG, typo, "model=internvl3_8b"]) == 0
    out = capsys.readouterr().out
    assert "warning: stage 'text_reasonign' has capability 'text_reasonign' but its rows carry 'text_reasoning'" in out
    assert "a typo in curriculum.stages[1].name?" in out
    assert "warning: curriculum.capability_overrides.text_reasoning applies to no stage" in out  # the damping is lost
    assert main(["plan", "--config", CONFIG, typo, "+curriculum.strict=true"]) == 2
    line = error_line(capsys)
    assert "a typo in curriculum.stages[1].name?" in line and "curriculum.strict is true" in line


def test_a_capability_typo_is_named(capsys) -> None:
    assert main(["plan", "--config", CONFIG, "+curriculum.stages.0.capability=perceptoin"]) == 0
    assert "a typo in curriculum.stages[0].capability?" in capsys.readouterr().out


def test_plus_backend_on_a_plain_config_says_how_to_select_a_backend(tmp_path: Path, capsys) -> None:
    config = tmp_path / "my.yaml"
    config.write_text(
        "curriculum:\n  batch_size: 4\n  stages:\n    - name: perception\n"
        f"      train_files: [{REPO / 'data_recipes/samples/perception.jsonl'}]\n"
    )
    assert main(["train", "--config", str(config), "+backend=trl", "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plain value 'trl'" in err[0] and "--config recipes/config.yaml backend=trl" in err[0]
