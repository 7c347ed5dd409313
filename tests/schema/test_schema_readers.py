from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vlm_capcurriculum.schema import (
    DataFileError,
    RecordValidationError,
    SampleRecord,
    read_records,
    write_records,
)


def test_reads_our_format(write_jsonl, make_row, image_dir: Path) -> None:
    path = write_jsonl([make_row(caption="a red square")])
    result = read_records(path, image_root=image_dir)
    assert result.records == [
        SampleRecord(
            id="q1",
            capability="perception",
            problem="<image>What colour is the square?",
            images=("a.png",),
            answer="A",
            answer_type="choice",
            choices={"A": "red", "B": "blue"},
            pass_rate=0.5,
            source="unit",
            extra={"caption": "a red square"},
        )
    ]
    assert result.report.summary() == "kept 1 of 1 rows"


def test_every_bad_row_is_reported_with_file_line_and_field(write_jsonl, make_row, image_dir: Path) -> None:
    rows = [
        make_row(id="ok"),
        make_row(id="no-answer", answer=None),
        make_row(id="missing-image", images=["nope.png"]),
        make_row(id="two-placeholders", problem="<image><image>Compare."),
        make_row(id="bad-rate", pass_rate=1.2),
        make_row(id="ok"),  # duplicate
        make_row(id="essay", answer_type="essay"),
        make_row(id="not-a-choice", answer="D"),
        "{not json",
        "[1, 2]",
    ]
    path = write_jsonl(rows)
    result = read_records(path, image_root=image_dir, strict=False)
    assert [record.id for record in result.records] == ["ok"]
    located = {(issue.location.line, issue.field, issue.reason) for issue in result.report.issues}
    assert located == {
        (2, "answer", "missing_field"),
        (3, "images", "image_not_found"),
        (4, "problem", "image_placeholder_mismatch"),
        (5, "pass_rate", "pass_rate_out_of_range"),
        (6, "id", "duplicate_id"),
        (7, "answer_type", "unknown_answer_type"),
        (8, "answer", "choice_not_in_choices"),
        (9, "<json>", "invalid_json"),
        (10, "<row>", "not_an_object"),
    }
    assert all(str(issue).startswith(f"{path}:") for issue in result.report.issues)
    assert result.report.rows_read == 10 and result.report.rows_skipped == 9
    assert sum(result.report.skipped_by_reason().values()) == 9


def test_strict_mode_raises_with_every_issue(write_jsonl, make_row, image_dir: Path) -> None:
    path = write_jsonl([make_row(id="a", answer=None), make_row(id="b", images=["gone.png"], pass_rate=-1)])
    with pytest.raises(RecordValidationError) as err:
        read_records(path, image_root=image_dir)
    assert len(err.value.issues) == 3
    assert err.value.one_line() == (
        f"{path}:1: answer: missing (and 2 more: image_not_found 1, pass_rate_out_of_range 1)"
    )
    assert "gone.png" in str(err.value)


def test_row_with_images_but_no_placeholder_gets_them_prepended_and_counted(write_jsonl, make_row, image_dir) -> None:
    path = write_jsonl([make_row(problem="What colours?", images=["a.png", "b.png"])])
    result = read_records(path, image_root=image_dir)
    assert result.records[0].problem == "<image><image>What colours?"
    assert result.report.notes["prepended_image_placeholder"] == 1


def test_image_root_defaults_to_the_data_files_directory(tmp_path: Path, make_row, image_dir: Path) -> None:
    path = image_dir / "rows.jsonl"
    path.write_text(json.dumps(make_row()) + "\n")
    assert len(read_records(path).records) == 1
    with pytest.raises(RecordValidationError, match="not found"):
        read_records(path, image_root=tmp_path)


def test_reads_released_perception_rows_as_format_for_training_writes_them(write_jsonl, image_dir) -> None:
    # data_pipeline/format_for_training.py in the reference code
    row = {
        "index": "0",
        "answer": "B",
        "example_id": "train_00009",
        "split": "train",
        "image_path": ["a.png"],
        "option_A": "red",
        "option_B": "blue",
        "option_C": "green",
        "option_D": "white",
        "prompt": "<image>What colour is the ball?\nOptions:\nA: red\nB: blue\nC: green\nD: white\n",
    }
    result = read_records(
        write_jsonl([row], name="train_stage1_perception.jsonl"), image_root=image_dir, capability="perception"
    )
    record = result.records[0]
    assert record.id == "train_stage1_perception:0"
    assert record.answer_type == "choice" and record.choices == {"A": "red", "B": "blue", "C": "green", "D": "white"}
    assert record.images == ("a.png",) and record.capability == "perception"
    assert record.extra == {"example_id": "train_00009", "split": "train"}


def test_reads_released_passk_rows(write_jsonl, image_dir) -> None:
    # data_pipeline/passK/run_inference.py writes the dataset row plus predictions, correctness, pass_rate
    rows = [
        {
            "index": "17",
            "problem": "Find x.",
            "answer": "\\frac{1}{2}",
            "images": [],
            "source": "orz",
            "predictions": ["1/2", "2"],
            "correctness": [True, False],
            "pass_rate": 0.5,
        },
        {
            "index": "18",
            "problem": "What is shown?",
            "answer": "C",
            "images": ["b.png"],
            "source": "clevr",
            "predictions": [],
            "correctness": [],
            "pass_rate": 0.0,
        },
    ]
    result = read_records(write_jsonl(rows), image_root=image_dir, capability="visual_reasoning")
    text, visual = result.records
    assert (text.answer_type, text.images, text.pass_rate, text.problem) == ("math", (), 0.5, "Find x.")
    assert visual.answer_type == "choice" and visual.problem == "<image>What is shown?"
    assert visual.extra["correctness"] == []
    assert result.report.notes == {"derived_id": 2, "inferred_answer_type": 2, "prepended_image_placeholder": 1}


def test_json_array_rows_are_located_by_row_index(tmp_path: Path, make_row, image_dir: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([make_row(id="a"), make_row(id="b", answer=None)], indent=2))
    result = read_records(path, image_root=image_dir, strict=False)
    assert [str(issue) for issue in result.report.issues] == [f"{path}[row 1]: answer: missing"]


def test_json_extension_holding_json_lines(tmp_path: Path, make_row, image_dir: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(make_row(id="a")) + "\n" + json.dumps(make_row(id="b")) + "\n")
    assert [r.id for r in read_records(path, image_root=image_dir).records] == ["a", "b"]


def test_parquet_rows_are_located_by_row_index(tmp_path: Path, make_row, image_dir: Path) -> None:
    rows = [make_row(id="a"), make_row(id="b", pass_rate=3.0)]
    for row in rows:
        row["choices"] = json.dumps(row["choices"])  # a string column holding JSON is accepted too
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    result = read_records(path, image_root=image_dir, strict=False)
    assert [r.id for r in result.records] == ["a"]
    assert [str(issue) for issue in result.report.issues] == [f"{path}[row 1]: pass_rate: must be in [0, 1], got 3.0"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_writer_round_trips(tmp_path: Path, suffix: str, write_jsonl, make_row, image_dir: Path) -> None:
    rows = [
        make_row(id="a", caption="red"),
        make_row(id="b", problem="2+2?", images=[], answer="4", answer_type="number", choices={}, pass_rate=None),
    ]
    original = read_records(write_jsonl(rows), image_root=image_dir).records
    out = tmp_path / f"out{suffix}"
    assert write_records(original, out) == 2
    assert read_records(out, image_root=image_dir).records == original


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such file"),
        ("rows.csv", "a,b\n", "unsupported file type"),
        ("object.json", '{\n  "data": []\n}', "single JSON object"),
        ("broken.json", "[{]", "invalid JSON array"),
    ],
)
def test_unusable_files_are_file_errors(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataFileError, match=message):
        read_records(path, strict=False)


def test_ids_from_the_index_column_stay_distinct_across_files(tmp_path: Path, write_jsonl) -> None:
    a = write_jsonl([{"index": 0, "problem": "1+1?", "answer": 2}], name="a.jsonl")
    b = write_jsonl([{"index": 0, "problem": "2+2?", "answer": 4}], name="b.jsonl")
    records = read_records([a, b], capability="text_reasoning").records
    assert [(r.id, r.answer) for r in records] == [("a:0", "2"), ("b:0", "4")]


def test_missing_capability_without_a_default_is_an_error(write_jsonl) -> None:
    path = write_jsonl([{"id": "x", "problem": "1+1?", "answer": "2"}])
    with pytest.raises(RecordValidationError, match="capability: missing"):
        read_records(path)
