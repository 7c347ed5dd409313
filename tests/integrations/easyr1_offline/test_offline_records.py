"""records.py: the global index space as one EasyR1 data file, overlong-prompt removal, validation files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlm_capcurriculum.curriculum import build_plan, load_curriculum_data, parse_curriculum
from vlm_capcurriculum.curriculum.data import OVERLONG_NOTE, without_records
from vlm_capcurriculum.integrations.easyr1 import records
from vlm_capcurriculum.schema import DataFileError, RecordValidationError
from vlm_capcurriculum.schema.answer import AnswerSpec


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_one_row_per_record_in_global_index_order(sample_spec, tmp_path: Path) -> None:
    data = load_curriculum_data(sample_spec)
    path = records.write_train_file(data, tmp_path / "curriculum" / "train.jsonl")
    rows = _read(path)

    assert len(rows) == len(data) == 108
    assert not list(path.parent.glob(".*tmp*"))  # written atomically, nothing left behind
    for index, (row, record) in enumerate(zip(rows, data.records, strict=True)):
        assert row[records.INDEX_KEY] == index
        assert row[records.PROMPT_KEY] == record.problem
        assert row[records.PROMPT_KEY].count("<image>") == len(row[records.IMAGE_KEY]) == len(record.images)
        assert row[records.ANSWER_KEY] == record.ground_truth()
        assert AnswerSpec.parse(row[records.ANSWER_KEY]).answer == record.answer
        assert row[records.CAPABILITY_KEY] == record.capability
        assert all(Path(image).is_absolute() and Path(image).is_file() for image in row[records.IMAGE_KEY])
    # stages in declaration order: perception rows, then text reasoning (no images: an empty list), then visual
    assert [row[records.CAPABILITY_KEY] for row in rows[35:38]] == ["perception", "text_reasoning", "text_reasoning"]
    assert rows[40][records.IMAGE_KEY] == []


def test_text_only_data_has_no_image_column(repo_root: Path, tmp_path: Path) -> None:
    spec = parse_curriculum(
        {"batch_size": 4, "stages": [{"name": "t", "train_files": ["data_recipes/samples/text_reasoning.jsonl"],
                                      "epochs": 1}]}
    )  # fmt: skip
    rows = _read(records.write_train_file(load_curriculum_data(spec), tmp_path / "train.jsonl"))
    assert all(records.IMAGE_KEY not in row for row in rows)  # a text model has no processor for EasyR1's image path


def test_dropping_records_shifts_the_index_space_and_counts_them(sample_spec) -> None:
    data = load_curriculum_data(sample_spec)
    dropped = [0, 40, 41, 107]
    kept = without_records(data, dropped)

    assert len(kept) == 104
    assert [stage.offset for stage in kept.stages] == [0, 35, 69]
    assert kept.records == tuple(record for i, record in enumerate(data.records) if i not in dropped)
    assert [stage.report.notes[OVERLONG_NOTE] for stage in kept.stages] == [1, 2, 1]
    assert [stage.report.rows_kept for stage in kept.stages] == [35, 34, 35]
    assert "dropped_overlong_prompt 2" in kept.stages[1].report.summary()
    assert data.stages[1].report.notes[OVERLONG_NOTE] == 0  # the original is untouched
    # images still resolve through each record's own location after the shift
    assert kept.image_paths(69) == data.image_paths(72)
    plan = build_plan(sample_spec, kept.stage_data())
    assert plan.dataset_size == 104
    assert without_records(data, []) is data
    with pytest.raises(IndexError):
        without_records(data, [108])


def test_local_validation_files_are_converted_like_training_data(repo_root: Path, tmp_path: Path) -> None:
    value = records.write_val_file("data_recipes/samples/visual_reasoning.jsonl", tmp_path / "val.jsonl")
    rows = _read(Path(value))
    assert len(rows) == 36
    assert all(Path(image).is_file() for row in rows for image in row[records.IMAGE_KEY])
    answer = AnswerSpec.parse(rows[0][records.ANSWER_KEY])
    assert (answer.answer, answer.capability) == ("20", "visual_reasoning")
    assert records.INDEX_KEY not in rows[0]


def test_hub_validation_sets_pass_through(repo_root: Path, tmp_path: Path) -> None:
    assert records.write_val_file("hiyouga/geometry3k@test", tmp_path / "val.jsonl") == "hiyouga/geometry3k@test"
    assert not (tmp_path / "val.jsonl").exists()
    with pytest.raises(DataFileError, match="empty"):
        records.write_val_file("", tmp_path / "val.jsonl")


def test_a_bad_validation_row_is_an_error_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "2+2?", "answer": ""}) + "\n", encoding="utf-8")
    with pytest.raises(RecordValidationError, match=r"bad\.jsonl:1"):
        records.write_val_file(str(bad), tmp_path / "val.jsonl")
