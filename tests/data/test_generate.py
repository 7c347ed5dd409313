"""``vlmcc data generate``: captions -> perception MCQs, every malformed generation a counted reject."""

from __future__ import annotations

import json

import pytest
from pipeline_helpers import cli, docci_corpus, mcq_json, read_jsonl, write_jsonl

from vlm_capcurriculum.data.generate import MalformedMCQ, parse_mcq, shuffled
from vlm_capcurriculum.schema import read_records

GOOD = {
    "question": "Which is left?",
    "options": {"A": "a mug", "B": "a vase", "C": "a lamp", "D": "a book"},
    "answer": "C",
}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(GOOD),
        "Sure! Here it is:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nHope it helps.",
        "<think>the lamp is on the left</think>" + json.dumps(GOOD),
        json.dumps({**GOOD, "answer": "(C)"}),
        json.dumps({**GOOD, "options": ["a mug", "a vase", "a lamp", "a book"]}),
        json.dumps({**GOOD, "options": {"A.": "a mug", "B)": "a vase", "(C)": "a lamp", "d": "a book"}}),
    ],
)
def test_parse_accepts_the_shapes_generators_write(text: str) -> None:
    mcq = parse_mcq(text)
    assert mcq.question == "Which is left?" and mcq.answer == "C" and mcq.options["D"] == "a book"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("I cannot do that.", "no_json"),
        ('{"question": "Which?", "options": {"A": "x"', "no_json"),  # cut off
        (json.dumps({**GOOD, "question": " "}), "missing_question"),
        (json.dumps({**GOOD, "options": {"A": "x", "B": "y", "C": "z"}}), "missing_option"),
        (json.dumps({**GOOD, "options": {**GOOD["options"], "B": ""}}), "missing_option"),
        (json.dumps({**GOOD, "options": {**GOOD["options"], "E": "a cat"}}), "extra_option"),
        (json.dumps({**GOOD, "options": {**GOOD["options"], "D": "A  Mug."}}), "duplicate_options"),
        (json.dumps({**GOOD, "answer": "E"}), "answer_not_in_options"),
        (json.dumps({**GOOD, "answer": "a lamp"}), "answer_not_in_options"),
        (json.dumps({key: value for key, value in GOOD.items() if key != "answer"}), "answer_not_in_options"),
    ],
)
def test_parse_names_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(MalformedMCQ) as caught:
        parse_mcq(text)
    assert caught.value.reason == reason


def test_shuffled_options_keep_the_true_one_and_are_reproducible() -> None:
    mcq = parse_mcq(json.dumps(GOOD))
    moved = [shuffled(mcq, f"id{i}") for i in range(12)]
    assert all(
        m.options[m.answer] == "a lamp" and sorted(m.options.values()) == sorted(mcq.options.values()) for m in moved
    )
    assert len({m.answer for m in moved}) > 1 and shuffled(mcq, "id3") == moved[3]


def test_generate_end_to_end_with_faults_and_bad_rows(start_server, tmp_path, capsys) -> None:
    captions, images = docci_corpus(tmp_path, 6)
    lines = captions.read_text().splitlines()
    lines += [
        '{"example_id": "train_99999", "split": "train"}',
        "not json",
        json.dumps({"example_id": "train_77777", "image_file": "missing.jpg", "description": "gone"}),
    ]
    captions.write_text("\n".join(lines) + "\n")

    def answer(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
        number = text.split("Photo ")[1].split(":")[0]
        return {"2": "no idea", "3": mcq_json(number).replace('"A"}', '"Z"}')}.get(number, mcq_json(number))

    from vlm_capcurriculum.data.prompting import PromptTemplate

    def prompt(number: int) -> str:  # the fault server scripts faults by the request's text
        return PromptTemplate.packaged("perception_mcq.txt").fill(caption=json.loads(lines[number])["description"])

    # photo 4 meets a 500 then a truncated body before it is answered; photo 5 a malformed body
    server = start_server(answer=answer, faults={prompt(4): ["500", "truncated"], prompt(5): ["malformed"]})
    out = tmp_path / "mcq.jsonl"
    args = ["generate", "--captions", str(captions), "--source", "docci", "--image-root", str(images)]
    args += ["--base-url", server.base_url, "--model", "gen-72b", "--output", str(out), "--retry-delay", "0.01"]
    assert cli(*args) == 0
    err = capsys.readouterr().err
    assert "rejected" in err and "bad_input 3" in err and "no_json 1" in err and "answer_not_in_options 1" in err

    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["train_00000", "train_00001", "train_00004", "train_00005"]
    first = rows[0]
    assert first["answer"] == "A" and first["answer_type"] == "choice" and first["source"] == "docci"
    assert first["choices"] == {"A": "a mug", "B": "a vase", "C": "a lamp", "D": "a book"}
    assert first["problem"].startswith("<image>What stands to the left of the box in photo 0?\nOptions:\nA. a mug")
    assert first["caption"].startswith("Photo 0: a red mug") and first["images"] == ["train_00000.jpg"]
    # the output is valid input for the rest of the pipeline (our schema, images found)
    assert len(read_records(out, image_root=images).records) == 4

    rejects = read_jsonl(tmp_path / "mcq.rejects.jsonl")
    assert [r["reject_reason"] for r in rejects] == [
        "no_json", "answer_not_in_options", "bad_input", "bad_input", "bad_input"
    ]  # fmt: skip
    assert rejects[0]["generation"] == "no idea" and rejects[0]["location"].endswith(":3")
    bad = rejects[2:]
    assert bad[0]["location"].endswith(":7") and {p["field"] for p in bad[0]["problems"]} == {
        "image_file",
        "description",
    }
    assert bad[1]["problems"] == [{"field": "<row>", "message": "not a JSON object"}]
    assert bad[2]["problems"][0]["field"] == "image_file" and "not found" in bad[2]["problems"][0]["message"]
    summary = json.loads((tmp_path / "mcq.summary.json").read_text())
    assert summary["rejected"] == {"no_json": 1, "answer_not_in_options": 1, "bad_input": 3}
    assert summary["models"][0]["retries"] == {"http_500": 1, "truncated": 1, "malformed": 1}

    # a re-run is served from the cache and writes the same files
    server.reset_counts()
    before = out.read_bytes()
    assert cli(*args) == 0
    assert server.completions == 0 and out.read_bytes() == before


def test_pixmo_images_by_url_hash(start_server, tmp_path) -> None:
    from PIL import Image

    from vlm_capcurriculum.data.captions import pixmo_image_name

    images = tmp_path / "pixmo"
    images.mkdir()
    urls = [f"https://example.org/img{i}.jpg" for i in range(3)]
    for url in urls[:2]:
        Image.new("RGB", (8, 8)).save(images / pixmo_image_name(url, ".png"))
    captions = write_jsonl(
        tmp_path / "pixmo.jsonl",
        [{"image_url": url, "caption": f"Photo {i}: a cat.", "transcripts": ["a cat"]} for i, url in enumerate(urls)],
    )
    server = start_server(answer=lambda model, text, *_: mcq_json(text.split("Photo ")[1][0]))
    out = tmp_path / "mcq.jsonl"
    args = ["generate", "--captions", str(captions), "--source", "pixmo", "--image-root", str(images)]
    assert cli(*args, "--base-url", server.base_url, "--model", "gen", "--output", str(out)) == 0
    rows = read_jsonl(out)
    assert [r["images"] for r in rows] == [[pixmo_image_name(url, ".png")] for url in urls[:2]]
    assert rows[0]["id"].startswith("pixmo-") and rows[0]["meta"]["image_url"] == urls[0]
    [missing] = read_jsonl(tmp_path / "mcq.rejects.jsonl")
    assert missing["reject_reason"] == "bad_input" and "fetched?" in missing["problems"][0]["message"]
    assert server.completions == 2  # no model call for a question that could never be filtered


def test_pixmo_without_images_is_a_one_line_error(tmp_path, capsys) -> None:
    captions = write_jsonl(tmp_path / "pixmo.jsonl", [{"image_url": "https://x/y.jpg", "caption": "c"}])
    args = ["generate", "--captions", str(captions), "--source", "pixmo", "--base-url", "http://127.0.0.1:9/v1"]
    assert cli(*args, "--model", "gen", "--output", str(tmp_path / "o.jsonl")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "PixMo-Cap images are URLs" in err


def test_reference_generation_prompt_is_packaged_and_parses() -> None:
    from vlm_capcurriculum.data.generate import parse_mcq
    from vlm_capcurriculum.data.prompting import PromptTemplate

    text = PromptTemplate.packaged("reference_perception_mcq.txt", required=("caption",)).fill(caption="A red mug.")
    assert "# Image description\nA red mug.\n" in text and "{{" not in text and "{caption}" not in text
    example = text.split("# Example output\n")[1].split("# Reminder")[0]  # its own example reply parses as an MCQ
    assert parse_mcq(example).answer == "C"
