"""``vlmcc data convert``: each source's documented format -> sample records, every bad row reported by location."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pipeline_helpers import cli, read_jsonl, write_jsonl

from vlm_capcurriculum.data.convert import SOURCES, convert
from vlm_capcurriculum.schema import read_records


def png(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (10, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def image_file(root: Path, relative: str, colour: tuple[int, int, int] = (1, 2, 3)) -> str:
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(png(colour))
    return relative


def issues_of(output: Path) -> list[dict]:
    return read_jsonl(output.with_suffix(".issues.jsonl"))


def test_orz_pairs_as_in_the_released_json(tmp_path) -> None:
    pairs = [
        [{"from": "human", "value": "Find $x$ if $2x = 4$."}, {"from": "assistant", "ground_truth": {"value": "2"}}],
        [{"from": "human", "value": "Simplify."}, {"from": "assistant", "ground_truth": {"value": " \\frac{72}{5} "}}],
        [{"from": "human", "value": "Which?\nA. 1\nB. 2"}, {"from": "assistant", "ground_truth": {"value": "B", "pass_at_n": 0.5}}],
        [{"from": "human", "value": "No answer here."}, {"from": "assistant"}],
        {"from": "human"},
    ]  # fmt: skip
    source = tmp_path / "orz_math_13k_collection_hard.json"
    source.write_text(json.dumps(pairs, indent=4))
    out = tmp_path / "text.jsonl"
    summary = convert("orz", source, out)
    assert (summary.rows_read, summary.written) == (5, 3)
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["orz:0", "orz:1", "orz:2"]
    assert rows[0] == {**rows[0], "capability": "text_reasoning", "answer": "2", "answer_type": "math", "images": []}
    assert (
        rows[1]["answer"] == "\\frac{72}{5}" and rows[2]["answer_type"] == "choice" and rows[2]["orz_pass_at_n"] == 0.5
    )
    issues = issues_of(out)
    assert [(i["location"], i["field"]) for i in issues] == [
        (f"{source}[row 3]", "1.ground_truth.value"), (f"{source}[row 4]", "<row>")
    ]  # fmt: skip
    # the datasets-library export (columns "0" and "1") reads the same
    exported = write_jsonl(tmp_path / "orz.jsonl", [{"0": p[0], "1": p[1]} for p in pairs[:2]])
    assert [r["answer"] for r in read_jsonl(_converted("orz", exported, tmp_path))] == ["2", "\\frac{72}{5}"]


def _converted(source: str, path: Path, tmp_path: Path, **options) -> Path:
    out = tmp_path / f"{source}-{path.stem}.jsonl"
    convert(source, path, out, **options)
    return out


def test_clevr_math_parquet_with_embedded_images(tmp_path) -> None:
    table = pa.table(
        {
            "template": ["subtraction", "addition", "subtraction"],
            "id": ["CLEVR_train_000001_0", "CLEVR_train_000002_1", "CLEVR_train_000003_0"],
            "question": ["Subtract all red cubes. How many objects are left?", "Add 2 cylinders. How many?", "?"],
            "image": [
                {"bytes": png((200, 0, 0)), "path": "CLEVR_train_000001.png"},
                {"bytes": png((0, 200, 0)), "path": "CLEVR_train_000002.png"},
                {"bytes": b"not an image", "path": "x.png"},
            ],
            "label": [5, 7, 1],
        }
    )
    source = tmp_path / "clevr-math-train.parquet"
    pq.write_table(table, source)
    out = tmp_path / "clevr.jsonl"
    summary = convert("clevr_math", source, out)
    assert summary.written == 2
    rows = read_jsonl(out)
    assert rows[0]["id"] == "clevr_math:CLEVR_train_000001_0" and rows[0]["answer"] == "5"
    assert rows[0]["answer_type"] == "number" and rows[0]["template"] == "subtraction"
    assert rows[0]["problem"] == "<image>Subtract all red cubes. How many objects are left?"
    assert rows[0]["images"][0].startswith("images/clevr_math/") and rows[0]["images"][0].endswith(".png")
    assert (tmp_path / rows[0]["images"][0]).read_bytes() == png((200, 0, 0))
    [issue] = issues_of(out)
    assert issue["location"] == f"{source}[row 2]" and issue["field"] == "image"
    assert len(read_records(out).records) == 2  # images resolve against the output's folder


def test_geoqa170k_conversations(tmp_path) -> None:
    root = tmp_path / "geo170k" / "images"
    rows = [
        {
            "image": image_file(root, "geoqa_plus/1.png"),
            "conversations": [
                {"from": "human", "value": "<image>\nIn triangle ABC, angle A = 50°. Find angle B.\nChoices:\nA:30°\nB:40°\nC:50°\nD:60°"},
                {"from": "gpt", "value": "Since the angles sum to 180°, angle B is 40°.\nAnswer:B"},
            ],
        },
        {
            "image": image_file(root, "geoqa_plus/2.png"),
            "conversations": [
                {"from": "human", "value": "Find the length of AB."},
                {"from": "gpt", "value": "By Pythagoras the length is \\boxed{5}."},
            ],
        },
        {"image": "geoqa_plus/3.png", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "I think so."}]},
        {"image": "geoqa_plus/missing.png", "conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "\\boxed{1}"}]},
    ]  # fmt: skip
    source = tmp_path / "qa_tuning.json"
    source.write_text(json.dumps(rows))
    out = tmp_path / "geo.jsonl"
    summary = convert("geoqa170k", source, out, image_root=root)
    assert summary.written == 2
    first, second = read_jsonl(out)
    assert first["problem"].startswith("<image>\nIn triangle ABC") and first["answer"] == "B"
    assert first["answer_type"] == "choice" and first["choices"] == {"A": "30°", "B": "40°", "C": "50°", "D": "60°"}
    assert (
        second["problem"] == "<image>Find the length of AB."
        and second["answer"] == "5"
        and second["answer_type"] == "math"
    )
    issues = issues_of(out)
    assert [(i["location"][-7:], i["field"], i["reason"]) for i in issues] == [
        ("[row 2]", "conversations", "bad_type"), ("[row 3]", "images", "image_not_found")
    ]  # fmt: skip


def test_math_puma_instruction_output(tmp_path) -> None:
    root = tmp_path / "puma"
    rows = [
        {"image_url": image_file(root, "images/a.png"), "instruction": "What is the area of the square?",
         "output": "Each side is 3, so the area is \\boxed{9}."},
        {"image_url": "", "instruction": "Compute 3 * 4.", "output": "The answer is 12."},
        {"image_url": image_file(root, "images/b.png"), "instruction": "Why?", "output": "Because it is so."},
    ]  # fmt: skip
    out = _converted("math_puma", write_jsonl(tmp_path / "train.jsonl", rows), tmp_path, image_root=root)
    first, second = read_jsonl(out)
    assert (first["answer"], first["images"], first["problem"]) == (
        "9",
        ["images/a.png"],
        "<image>What is the area of the square?",
    )
    assert (second["answer"], second["images"]) == ("12", [])
    [issue] = issues_of(out)
    assert issue["field"] == "output" and "no final answer" in issue["message"] and issue["location"].endswith(":3")


def test_docvqa_both_formats(tmp_path) -> None:
    challenge = {
        "dataset_name": "docvqa",
        "dataset_split": "train",
        "data": [
            {"questionId": 337, "question": "what is the date mentioned in this letter?",
             "image": image_file(tmp_path, "documents/xnbl0037_1.png"), "docId": 279,
             "answers": ["1/8/93", "1/8/1993"]},
            {"questionId": 338, "question": "what is the contact person name?", "image": "documents/y.png",
             "docId": 280, "answers": []},
        ],
    }  # fmt: skip
    source = tmp_path / "train_v1.0.json"
    source.write_text(json.dumps(challenge))
    out = tmp_path / "docvqa.jsonl"
    summary = convert("docvqa", source, out, image_root=tmp_path)
    [row] = read_jsonl(out)
    assert row["id"] == "docvqa:337" and row["answer"] == "1/8/93" and row["answers"] == ["1/8/93", "1/8/1993"]
    assert row["answer_type"] == "text" and summary.skipped == {"missing_field": 1}
    parquet = tmp_path / "DocVQA-validation.parquet"
    pq.write_table(
        pa.table({"questionId": ["49153"], "question": ["What is the ‘actual’ value?"], "question_types": [["figure"]],
                  "image": [{"bytes": png((9, 9, 9)), "path": None}], "docId": [14465],
                  "ucsf_document_id": ["pybv0228"], "ucsf_document_page_no": ["81"],
                  "answers": [["0.28"]], "data_split": ["val"]}),
        parquet,
    )  # fmt: skip
    [row] = read_jsonl(_converted("docvqa", parquet, tmp_path))
    assert row["answer"] == "0.28" and row["images"][0].startswith("images/docvqa/")


def test_arxivqa_options_and_labels(tmp_path) -> None:
    root = tmp_path / "arxivqa"
    rows = [
        {"id": "1810.10511_0", "image": image_file(root, "images/1810.10511_0.jpg"), "question": "Which curve peaks first?",
         "options": ["A. the red one", "B. the blue one", "C. both", "D. neither"], "label": "B", "rationale": "Blue peaks at 2."},
        {"id": "2", "image": image_file(root, "images/2.jpg"), "question": "Q2", "options": ["(A) x", "(B) y"], "label": "(A) x"},
        {"id": "3", "image": image_file(root, "images/3.jpg"), "question": "Q3", "options": ["x", "y", "z"], "label": "C"},
        {"id": "4", "image": image_file(root, "images/4.jpg"), "question": "Q4", "options": ["A. x", "B. y"], "label": "E"},
    ]  # fmt: skip
    out = _converted("arxivqa", write_jsonl(tmp_path / "arxivqa.jsonl", rows), tmp_path, image_root=root)
    first, second, third = read_jsonl(out)
    assert first["choices"] == {"A": "the red one", "B": "the blue one", "C": "both", "D": "neither"}
    assert first["answer"] == "B" and first["rationale"] == "Blue peaks at 2."
    assert (
        first["problem"]
        == "<image>Which curve peaks first?\nOptions:\nA. the red one\nB. the blue one\nC. both\nD. neither"
    )
    assert (second["answer"], third["answer"], third["choices"]["C"]) == ("A", "C", "z")
    [issue] = issues_of(out)
    assert issue["field"] == "label" and issue["location"].endswith(":4")


def test_released_stage_files(tmp_path) -> None:
    root = tmp_path / "Perception"
    rows = [
        {"index": 0, "problem": "What is on the table?\nA. a cup\nB. a pen", "images": [image_file(root, "images/0.jpg")],
         "answer": "B", "source": "docci", "predictions": ["B"], "correctness": [True], "pass_rate": 1.0},
        {"index": 1, "problem": "Where?", "images": ["images/missing.jpg"], "answer": "A", "source": "docci"},
    ]  # fmt: skip
    source = write_jsonl(root / "perception_difficulty_curriculum.jsonl", rows)
    out = tmp_path / "perception.jsonl"
    summary = convert("capcurriculum", source, out, image_root=root)
    [row] = read_jsonl(out)
    assert row["capability"] == "perception" and row["id"] == "perception_difficulty_curriculum:0"
    assert row["problem"].startswith("<image>What is on the table?") and row["pass_rate"] == 1.0
    assert row["answer_type"] == "choice" and row["predictions"] == ["B"]
    assert summary.notes["prepended_image_placeholder"] == 1 and summary.skipped == {"image_not_found": 1}
    unnamed = write_jsonl(tmp_path / "train.jsonl", rows[:1])
    with pytest.raises(ValueError, match="cannot tell the capability"):
        convert("capcurriculum", unnamed, tmp_path / "x.jsonl", image_root=root)
    assert (
        convert("capcurriculum", unnamed, tmp_path / "x.jsonl", image_root=root, capability="perception").written == 1
    )


def test_cli_convert(tmp_path, capsys) -> None:
    source = tmp_path / "orz.json"
    source.write_text(
        json.dumps([[{"from": "human", "value": "1+1?"}, {"from": "assistant", "ground_truth": {"value": "2"}}], 5])
    )
    out = tmp_path / "out.parquet"
    assert cli("convert", "orz", "--input", str(source), "--output", str(out)) == 0
    assert "orz: wrote 1 of 2 rows; skipped" in capsys.readouterr().err
    assert read_records(out).records[0].answer == "2"
    assert cli("convert", "orz", "--input", str(source), "--output", str(out), "--strict") == 3
    assert cli("convert", "orz", "--input", str(tmp_path / "none.json"), "--output", str(out)) == 2
    assert "no such file" in capsys.readouterr().err
    assert sorted(SOURCES) == [
        "arxivqa", "capcurriculum", "clevr_math", "docvqa", "geoqa170k", "math_puma", "orz", "vlmevalkit"
    ]
