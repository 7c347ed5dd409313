"""The parquet writer: verl's columns, our ground-truth encoding, and loud bad-record reports."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from verl_samples import make_records

from vlm_capcurriculum.integrations.verl.writer import (
    VerlDataError,
    verl_schema,
    write_verl_parquet,
)
from vlm_capcurriculum.prompts import render_prompt
from vlm_capcurriculum.schema.answer import AnswerSpec


def test_rows_carry_verls_columns(tmp_path: Path) -> None:
    root = tmp_path / "images"
    records = make_records(root, "perception", 2) + make_records(root, "text_reasoning", 1)
    assert write_verl_parquet(records, tmp_path / "out.parquet", image_root=root) == 3
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.schema.equals(verl_schema(embed_images=True))
    rows = table.to_pylist()

    first = rows[0]
    assert first["data_source"] == first["ability"] == "perception"
    assert first["prompt"] == [
        {"role": "user", "content": render_prompt(records[0]["problem"])},
    ]
    assert first["prompt"][0]["content"].startswith("<image>What colour")
    assert first["images"] == [{"bytes": (root / "perception/0.png").read_bytes(), "path": "perception/0.png"}]
    assert first["reward_model"]["style"] == "rule"
    spec = AnswerSpec.parse(first["reward_model"]["ground_truth"])
    assert spec == AnswerSpec("A", "choice", {"A": "red", "B": "blue", "C": "green", "D": "yellow"}, "perception")
    assert first["extra_info"] == {
        "index": 0,
        "id": "perception-0",
        "capability": "perception",
        "answer_type": "choice",
        "choices": [
            {"letter": k, "text": v} for k, v in [("A", "red"), ("B", "blue"), ("C", "green"), ("D", "yellow")]
        ],
        "source": "docci-synthetic",
        "pass_rate": 0.0,
        "question": records[0]["problem"],
    }

    text = rows[2]
    assert text["images"] == [] and text["extra_info"]["choices"] == [] and text["extra_info"]["index"] == 2
    assert json.loads(text["reward_model"]["ground_truth"]) == {
        "answer": "30",
        "type": "math",
        "capability": "text_reasoning",
    }


def test_paths_instead_of_bytes(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_verl_parquet(
        make_records(root, "visual_reasoning", 1),
        tmp_path / "p.parquet",
        image_root=root,
        embed_images=False,
        format_prompt=None,
    )
    row = pq.read_table(tmp_path / "p.parquet").to_pylist()[0]
    assert row["images"] == [str((root / "visual_reasoning/0.png").resolve())]
    assert row["prompt"][0]["content"] == "How many squares are in the image <image>?"


def test_bad_records_are_all_reported_with_position_and_id(tmp_path: Path) -> None:
    root = tmp_path / "images"
    good = make_records(root, "perception", 2)
    bad = [
        {**good[0], "id": "no-image", "images": ["missing.png"]},
        {**good[0], "id": "two-placeholders", "problem": "<image><image> which?"},
        {**good[0], "id": "bad-rate", "pass_rate": 1.5},
        {**good[0], "id": "bad-choice", "answer": "E"},
        {key: value for key, value in good[1].items() if key != "answer"},
        good[1],  # fine: the record above was rejected, so this id is new
        good[1],  # duplicate
        {**good[0], "id": "list-choices", "choices": ["A"]},
    ]
    with pytest.raises(VerlDataError) as error:
        write_verl_parquet(bad, tmp_path / "x.parquet", image_root=root, origin="stage1.jsonl")
    problems = error.value.problems
    assert problems[0].startswith("stage1.jsonl record 0 (id='no-image'): image not found")
    assert "problem: has 2 <image> placeholder(s) for 1 image(s)" in problems[1]
    assert "pass_rate: must be in [0, 1], got 1.5" in problems[2]
    assert "answer: choice 'E' is not among the choices" in problems[3]
    assert "missing field 'answer'" in problems[4]
    assert problems[5].startswith("stage1.jsonl record 6 (id='perception-1'): duplicate id (first at record 5)")
    assert problems[6] == "stage1.jsonl record 7 (id='list-choices'): choices: must map letters to texts"
    assert len(problems) == 7
    assert not (tmp_path / "x.parquet").exists()
