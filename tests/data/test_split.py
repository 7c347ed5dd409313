"""`vlmcc data split`: the reference's 85/5/10 hash split of the filtered MCQs, reproducible and lossless."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

import pytest

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.data.split import split_file, split_of


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def mcq(i: int) -> dict:
    return {"id": f"train_{i:05d}", "problem": f"<image>Q{i}?", "answer": "ABCD"[i % 4], "images": [f"{i}.jpg"]}


def test_unseeded_split_is_the_references_scheme() -> None:
    # format_for_training.py: sha256 of the example id, first 8 hex digits / 0xFFFFFFFF, val < 0.05 <= test < 0.15
    for i in range(300):
        key = f"train_{i:05d}"
        bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        assert split_of(key) == ("val" if bucket < 0.05 else "test" if bucket < 0.15 else "train")
    # a few DOCCI ids and their parts, as the reference's files hold them
    assert [split_of(k) for k in ("train_00044", "train_00128", "train_00013", "train_00022", "train_00009")] == [
        "val", "val", "test", "test", "train"
    ]  # fmt: skip


def test_cli_split_is_85_5_10_lossless_and_independent_of_order(tmp_path: Path, capsys) -> None:
    rows = [mcq(i) for i in range(4000)] + [{**mcq(7), "problem": "<image>another question on image 7?"}]
    source = write_rows(tmp_path / "kept.jsonl", rows)
    assert main(["data", "split", "--input", str(source), "--output-dir", str(tmp_path / "a")]) == 0
    assert "4001 rows of 4000 examples" in capsys.readouterr().err
    parts = {name: read(tmp_path / "a" / f"{name}_stage1_perception.jsonl") for name in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == len(rows)
    assert sorted(json.dumps(r) for p in parts.values() for r in p) == sorted(json.dumps(r) for r in rows)  # verbatim
    assert 0.83 < len(parts["train"]) / len(rows) < 0.87 and 0.04 < len(parts["val"]) / len(rows) < 0.06
    assert 0.085 < len(parts["test"]) / len(rows) < 0.115
    owners = {name for name, p in parts.items() for r in p if r["id"] == "train_00007"}
    assert len(owners) == 1  # both questions on one image share a part
    summary = json.loads((tmp_path / "a" / "split_stage1_perception.summary.json").read_text())
    assert summary["rows"] == {name: len(p) for name, p in parts.items()} and summary["seed"] is None

    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    write_rows(tmp_path / "shuffled.jsonl", shuffled)
    split_file(tmp_path / "shuffled.jsonl", tmp_path / "b")
    for name, part in parts.items():
        again = read(tmp_path / "b" / f"{name}_stage1_perception.jsonl")
        assert sorted(r["id"] for r in again) == sorted(r["id"] for r in part)


def test_seed_draws_another_reproducible_split(tmp_path: Path) -> None:
    source = write_rows(tmp_path / "kept.jsonl", [mcq(i) for i in range(1000)])
    val = {}
    for run, seed in (("s1", 1), ("s1_again", 1), ("s2", 2)):
        split_file(source, tmp_path / run, seed=seed, prefix="p")
        val[run] = [r["id"] for r in read(tmp_path / run / "val_p.jsonl")]
    assert val["s1"] == val["s1_again"] and val["s1"] != val["s2"]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"problem": "Q?", "answer": "A"}, r"kept\.jsonl:3: field 'id': needs a non-empty string or integer id"),
        ({"id": "", "problem": "Q?"}, r"kept\.jsonl:3: field 'id'"),
        ([1, 2], r"kept\.jsonl:3: not a JSON object"),
    ],
)
def test_a_row_without_an_id_stops_the_split_and_writes_nothing(tmp_path: Path, capsys, row, message) -> None:
    source = write_rows(tmp_path / "kept.jsonl", [mcq(0), mcq(1), row])
    assert main(["data", "split", "--input", str(source), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_bad_ratios_are_usage_errors(tmp_path: Path, capsys) -> None:
    source = write_rows(tmp_path / "kept.jsonl", [mcq(0)])
    argv = ["data", "split", "--input", str(source), "--output-dir", str(tmp_path), "--val-ratio", "0.6"]
    assert main([*argv, "--test-ratio", "0.5"]) == 2
    assert "sum to at most 1" in capsys.readouterr().err
