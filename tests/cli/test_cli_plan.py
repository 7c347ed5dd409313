from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlm_capcurriculum.cli import main

REPO = Path(__file__).resolve().parents[2]


def plain_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(body)
    return path


@pytest.fixture
def text_data(tmp_path: Path) -> Path:
    path = tmp_path / "text.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"t{i}", "problem": f"{i}+1?", "answer": i + 1}) + "\n" for i in range(10))
    )
    return path


def test_table_of_the_default_recipe(monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    assert main(["plan", "--config", "recipes/config.yaml"]) == 0
    out = capsys.readouterr().out
    for text in (
        "perception",
        "text_reasoning",
        "visual_reasoning",
        "1-60",
        "61-120",
        "121-180",
        "vision_tower=frozen",
        "start: reset_optimizer, refresh_reference",
        "kept 36 of 36 rows",
    ):
        assert text in out
    assert "total" in out and "180" in out


def test_json_of_a_recipe_with_group_and_value_overrides(monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    assert (
        main(["plan", "--config", "recipes/config.yaml", "curriculum=order_213", "curriculum.batch_size=4", "--json"])
        == 0
    )
    plan = json.loads(capsys.readouterr().out)
    assert plan["mode"] == "staged" and plan["batch_size"] == 4
    assert [(s["name"], s["steps"], s["start_step"], s["end_step"]) for s in plan["stages"]] == [
        ("text_reasoning", 135, 1, 135),
        ("perception", 135, 136, 270),
        ("visual_reasoning", 135, 271, 405),
    ]
    assert plan["total_steps"] == 405
    assert [d["rows_kept"] for d in plan["data"]] == [36, 36, 36]


def test_plain_yaml_with_only_a_curriculum_block(tmp_path: Path, text_data: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    config = plain_config(
        tmp_path,
        "curriculum:\n  batch_size: 2\n  stages:\n    - {name: text_reasoning, train_files: [text.jsonl], epochs: 3}\n",
    )
    assert main(["plan", "--config", str(config), "curriculum.batch_size=5", "+note=hello", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["batch_size"], plan["total_steps"]) == (5, 6)


@pytest.mark.parametrize(
    ("body", "overrides", "expected"),
    [
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epoch: 3}\n",
            [],
            "run.yaml: curriculum.stages[0].epoch: unknown key; did you mean 'epochs'?",
        ),
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [gone.jsonl], epochs: 3}\n",
            [],
            "run.yaml: curriculum.stages[0].train_files[0]: 'gone.jsonl': no such file",
        ),
        (
            "curriculum:\n  batch_size: 20\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 3}\n",
            [],
            "run.yaml: stage 't': 10 samples, fewer than one batch of 20",
        ),
        (
            "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 3}\n",
            ["curriculum=merged"],
            "run.yaml: curriculum: is the string 'merged', not a curriculum block",
        ),
        (
            "curriculum:\n  batch_size: 2\n  order: easy_to_hard\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 1}\n",
            [],
            "order easy_to_hard needs pass_rate on every record; 10 of 10",
        ),
        ("other: 1\n", [], "run.yaml: curriculum: missing: the config has no curriculum block"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tmp_path, text_data, monkeypatch, capsys, body, overrides, expected):
    monkeypatch.chdir(tmp_path)
    config = plain_config(tmp_path, body)
    assert main(["plan", "--config", str(config), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vlmcc plan: error: ") and err.count("\n") == 1
    assert expected in err


def test_bad_rows_fail_with_their_location_unless_lenient(tmp_path, text_data, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with text_data.open("a") as handle:
        handle.write(json.dumps({"id": "t99", "problem": "?", "pass_rate": 2}) + "\n")
    config = plain_config(
        tmp_path, "curriculum:\n  batch_size: 2\n  stages:\n    - {name: t, train_files: [text.jsonl], epochs: 1}\n"
    )
    assert main(["plan", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{text_data}:11: answer: missing (and 1 more: pass_rate_out_of_range 1) (--lenient skips bad rows)" in err
    assert main(["plan", "--config", str(config), "--lenient"]) == 0
    assert "kept 10 of 11 rows; skipped 1 (missing_field 1)" in capsys.readouterr().out


def test_missing_config_file(capsys) -> None:
    assert main(["plan", "--config", "nowhere.yaml"]) == 2
    assert "nowhere.yaml: no such config file" in capsys.readouterr().err
