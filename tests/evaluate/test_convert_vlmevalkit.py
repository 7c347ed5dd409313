"""``vlmcc data convert vlmevalkit``: VLMEvalKit benchmark TSVs (its own layout) into records ``vlmcc eval`` reads."""

from __future__ import annotations

import base64
import csv
import io

from eval_helpers import read_jsonl
from PIL import Image

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.schema import read_records


def png_b64(colour: tuple[int, int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (9, 7), colour).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_tsv(path, header, rows) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL)  # VLMEvalKit's own dump quoting
        writer.writerow(header)
        writer.writerows(rows)


def test_mcq_and_yes_no_benchmarks_convert(tmp_path) -> None:
    red, blue = png_b64((255, 0, 0)), png_b64((0, 0, 255))
    write_tsv(
        tmp_path / "MMStar.tsv",
        ["index", "image", "question", "hint", "A", "B", "C", "answer", "category"],
        [
            ["0", red, "What colour is it?", "", "red", "blue", "", "A", "coarse perception"],
            ["1", "0", "Is it bright?", "Look closely.", "yes", "no", "maybe", "B", "fine-grained"],  # image of row 0
            ["2", blue, "Which one?", "", "x", "y", "", "D", "logic"],  # answer names no option: reported
        ],
    )
    write_tsv(
        tmp_path / "POPE.tsv",
        ["index", "image", "question", "answer", "category"],
        [
            ["7", blue, "Is there a red square in the image?", "no", "random"],
            ["8", "not base64!", "Is there a dog?", "yes", "random"],  # reported
            ["9", red, "What is shown?", "a square", "random"],  # free-form: reported, not guessed
        ],
    )
    out = tmp_path / "bench.jsonl"
    args = [
        "data",
        "convert",
        "vlmevalkit",
        "--input",
        str(tmp_path / "MMStar.tsv"),
        "--input",
        str(tmp_path / "POPE.tsv"),
        "--output",
        str(out),
    ]
    assert main(args) == 0
    records = {r.id: r for r in read_records(out, image_root=tmp_path).records}
    assert list(records) == ["MMStar:0", "MMStar:1", "POPE:7"]
    first, second, pope = records.values()
    assert first.problem == "<image>Question: What colour is it?\nOptions:\nA. red\nB. blue"
    assert second.problem.startswith("<image>Hint: Look closely.\nQuestion: Is it bright?") and second.answer == "B"
    assert first.images == second.images  # the shared image was resolved and stored once
    assert (first.answer_type, first.source, first.extra["category"]) == ("choice", "MMStar", "coarse perception")
    assert (pope.answer, pope.answer_type, pope.source) == ("No", "yesno", "POPE")
    issues = read_jsonl(tmp_path / "bench.issues.jsonl")
    assert [(i["location"].rsplit("/", 1)[-1], i["field"]) for i in issues] == [
        ("MMStar.tsv:4", "answer"),
        ("POPE.tsv:3", "image"),
        ("POPE.tsv:4", "answer"),
    ]
