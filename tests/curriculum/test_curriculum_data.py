from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlm_capcurriculum.curriculum import PlanError, load_curriculum_data, parse_curriculum, plan_curriculum
from vlm_capcurriculum.schema import DataFileError, RecordValidationError


def write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def text_rows(prefix: str, n: int, **fields) -> list[dict]:
    return [{"id": f"{prefix}{i}", "problem": f"{i} + 1 = ?", "answer": str(i + 1), **fields} for i in range(n)]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "x.png")
    write(
        tmp_path / "p" / "part-1.jsonl",
        [
            {
                "id": f"p{i}",
                "problem": "<image>Colour?",
                "images": ["x.png"],
                "answer": "black",
                "answer_type": "text",
                "pass_rate": 0.5,
            }
            for i in range(5)
        ],
    )
    write(tmp_path / "p" / "part-0.jsonl", text_rows("q", 3, pass_rate=0.25))
    write(tmp_path / "t.jsonl", text_rows("t", 6, pass_rate=1.0))
    return tmp_path


def spec_for(**changes):
    config = {
        "batch_size": 2,
        "stages": [
            {"name": "perception", "train_files": ["p/*.jsonl"], "image_root": "img", "epochs": 1},
            {"name": "text_reasoning", "train_files": ["t.jsonl"], "epochs": 2},
        ],
    }
    config.update(changes)
    return parse_curriculum(config)


def test_global_index_space_is_stages_in_order_with_sorted_globs(tree: Path) -> None:
    data = load_curriculum_data(spec_for(), base_dir=tree)
    assert [r.id for r in data.records] == [
        "q0",
        "q1",
        "q2",
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
        "t0",
        "t1",
        "t2",
        "t3",
        "t4",
        "t5",
    ]
    assert data.stages[0].files == (tree / "p" / "part-0.jsonl", tree / "p" / "part-1.jsonl")
    assert [r.capability for r in data.records] == ["perception"] * 8 + ["text_reasoning"] * 6
    assert data.image_paths(3) == ((tree / "img" / "x.png").absolute(),)
    assert data.locate(9) == (data.stages[1], 1)


def test_plan_on_loaded_data(tree: Path) -> None:
    data, plan = plan_curriculum(spec_for(), base_dir=tree)
    assert [(s.name, s.num_samples, s.steps, s.start_step, s.end_step) for s in plan.stages] == [
        ("perception", 8, 4, 1, 4),
        ("text_reasoning", 6, 6, 5, 10),
    ]
    assert len(data.records) == plan.dataset_size == 14


def test_missing_files_name_the_spec_key(tree: Path) -> None:
    spec = spec_for(stages=[{"name": "a", "train_files": ["t.jsonl", "nope/*.jsonl"], "epochs": 1}])
    with pytest.raises(
        DataFileError, match=r"curriculum.stages\[0\].train_files\[1\]: 'nope/\*.jsonl' matches no file"
    ):
        load_curriculum_data(spec, base_dir=tree)
    spec = spec_for(stages=[{"name": "a", "train_files": ["t.jsonl"], "image_root": "pics", "epochs": 1}])
    with pytest.raises(DataFileError, match=r"curriculum.stages\[0\].image_root: 'pics': no such directory"):
        load_curriculum_data(spec, base_dir=tree)


def test_strict_mode_reports_the_bad_rows_of_every_stage(tree: Path) -> None:
    write(tree / "t.jsonl", [*text_rows("t", 5), {"id": "t9", "problem": "?"}])
    write(tree / "p" / "part-0.jsonl", [{"id": "q0", "problem": "<image>?", "images": ["gone.png"], "answer": "1"}])
    with pytest.raises(RecordValidationError) as err:
        load_curriculum_data(spec_for(), base_dir=tree)
    assert {issue.reason for issue in err.value.issues} == {"image_not_found", "missing_field"}
    data = load_curriculum_data(spec_for(), base_dir=tree, strict=False)
    assert [s.report.rows_skipped for s in data.stages] == [1, 1]
    assert data.report().summary() == (
        "kept 10 of 12 rows; skipped 2 (image_not_found 1, missing_field 1); inferred_answer_type 5"
    )


def test_difficulty_order_names_the_records_without_pass_rate(tree: Path) -> None:
    write(tree / "t.jsonl", text_rows("t", 6))
    with pytest.raises(PlanError) as err:
        plan_curriculum(spec_for(order="easy_to_hard"), base_dir=tree)
    assert str(err.value) == (
        f"stage 'text_reasoning': order easy_to_hard needs pass_rate on every record; 6 of 6 records have none "
        f"({tree / 't.jsonl'}:1, {tree / 't.jsonl'}:2, {tree / 't.jsonl'}:3 ...); compute pass rates "
        "(vlmcc data passk) or use order shuffle/file"
    )
