"""``vlmcc data filter``: keep a question iff every model is wrong from the image and right from the caption."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_helpers import cli, docci_corpus, read_jsonl, write_jsonl

from vlm_capcurriculum.data.filter import grade
from vlm_capcurriculum.rewards import AnswerSpec

OPTIONS = {"A": "a mug", "B": "a vase", "C": "a lamp", "D": "a book"}

# What each model answers per question (image-only, caption-only); the true option is A.
SCRIPT = {
    0: {"a": ("B", "A"), "b": ("C", "A")},  # kept: both misperceive, both read the caption right
    1: {"a": ("A", "A"), "b": ("C", "A")},  # image_right (model a sees it)
    2: {"a": ("B", "A"), "b": ("B", "D")},  # caption_wrong (model b misreads the caption)
    3: {"a": ("I am not sure.", "A"), "b": ("B", "A")},  # image_unanswered: kept only when counted as wrong
    4: {"a": ("(B) a vase", "a mug"), "b": ("The answer is D.", "Answer: A")},  # kept: option texts and phrases
}


def records(tmp_path: Path, count: int = 5) -> tuple[Path, Path]:
    captions, images = docci_corpus(tmp_path, count)
    rows = []
    for i, caption in enumerate(read_jsonl(captions)):
        rows.append(
            {
                "id": caption["example_id"],
                "capability": "perception",
                "problem": f"<image>What stands left of the box in photo {i}?\nOptions:\n"
                + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items()),
                "images": [caption["image_file"]],
                "answer": "A",
                "answer_type": "choice",
                "choices": OPTIONS,
                "source": "docci",
                "caption": caption["description"],
            }
        )
    return write_jsonl(tmp_path / "mcq.jsonl", rows), images


def scripted(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    number = int(text.split("photo ")[1].split("?")[0])
    image_answer, caption_answer = SCRIPT[number][model]
    assert ("cannot see the image" in text) == (not images)  # caption-only requests carry no image
    return caption_answer if not images else image_answer


def test_grade_uses_the_choice_verifier() -> None:
    spec = AnswerSpec("A", "choice", OPTIONS)
    assert [grade(a, spec) for a in ("A", "(a)", "a mug", "A. a mug", "Answer: A")] == ["right"] * 5
    assert [grade(a, spec) for a in ("B", "a vase", "D. a book")] == ["wrong"] * 3
    assert [grade(a, spec) for a in ("", "A or B", "maybe", "B. a mug")] == ["unanswered"] * 4


def run_filter(tmp_path: Path, mcq: Path, images: Path, urls: list[str], *extra: str, out: str = "kept.jsonl") -> int:
    args = ["filter", "--input", str(mcq), "--image-root", str(images), "--output", str(tmp_path / out)]
    for url in urls:
        args += ["--base-url", url]
    return cli(*args, "--model", "a", "--model", "b", "--retry-delay", "0.01", "--max-attempts", "4", *extra)


def test_filter_keeps_the_intersection_and_reports_each_model(start_server, tmp_path, capsys) -> None:
    mcq, images = records(tmp_path)
    server = start_server(answer=scripted, default_faults=[])
    assert run_filter(tmp_path, mcq, images, [server.base_url]) == 0
    assert [r["id"] for r in read_jsonl(tmp_path / "kept.jsonl")] == ["train_00000", "train_00004"]
    kept = read_jsonl(tmp_path / "kept.jsonl")[1]
    assert kept["filter"]["a"] == {
        "image": "(B) a vase",
        "caption": "a mug",
        "image_state": "wrong",
        "caption_right": True,
    }
    assert kept["caption"].startswith("Photo 4") and kept["answer"] == "A"  # the record itself, unchanged
    rejects = {r["id"]: r["reject_reason"] for r in read_jsonl(tmp_path / "kept.rejects.jsonl")}
    assert rejects == {"train_00001": "image_right", "train_00002": "caption_wrong", "train_00003": "image_unanswered"}

    report = json.loads((tmp_path / "kept.report.json").read_text())
    assert (report["graded"], report["kept"]) == (5, 2)
    a, b = report["models"]
    assert (a["model"], a["image_accuracy"], a["caption_accuracy"], a["kept_fraction"]) == ("a", 0.2, 1.0, 0.6)
    assert a["confusion"] == {
        "right": {"caption_right": 1, "caption_wrong": 0},
        "wrong": {"caption_right": 3, "caption_wrong": 0},
        "unanswered": {"caption_right": 1, "caption_wrong": 0},
    }
    assert (b["image_accuracy"], b["caption_accuracy"], b["kept_fraction"]) == (0.0, 0.8, 0.8)
    assert "filter: kept 2 of 5 graded questions" in capsys.readouterr().err

    # Counting an unanswered image question as wrong keeps question 3 too; every answer comes from the cache.
    server.reset_counts()
    assert run_filter(tmp_path, mcq, images, [server.base_url], "--count-unanswered-as-wrong", "--cache",
                      str(tmp_path / "kept.cache.sqlite"), out="kept2.jsonl") == 0  # fmt: skip
    assert [r["id"] for r in read_jsonl(tmp_path / "kept2.jsonl")] == ["train_00000", "train_00003", "train_00004"]
    assert server.completions == 0


def test_one_server_per_model_faults_and_a_bad_row(start_server, tmp_path) -> None:
    mcq, images = records(tmp_path)
    rows = read_jsonl(mcq)
    rows.append({**rows[0], "id": "no-caption", "caption": None})
    rows.append({**rows[0], "id": "no-image", "images": ["gone.jpg"]})
    write_jsonl(mcq, rows)
    prompt = (  # the text the server sees: the <image> placeholder became the image part
        "What stands left of the box in photo 0?\nOptions:\n"
        + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())
        + "\nLook at the image and reply with the letter of the correct option only."
    )
    # Model a's server fails its first answers in every way; model b's server times out once on question 0.
    server_a = start_server(answer=scripted, faults={prompt: ["503", "malformed", "reset", "429:0", "slow:3"]})
    server_b = start_server(answer=scripted, faults={prompt: ["slow:3"]})
    assert (
        run_filter(
            tmp_path, mcq, images, [server_a.base_url, server_b.base_url], "--timeout", "1", "--max-attempts", "6"
        )
        == 0
    )
    assert [r["id"] for r in read_jsonl(tmp_path / "kept.jsonl")] == ["train_00000", "train_00004"]
    assert {r.body["model"] for r in server_a.received} == {"a"} and {r.body["model"] for r in server_b.received} == {
        "b"
    }
    summary = json.loads((tmp_path / "kept.summary.json").read_text())
    assert summary["models"][0]["retries"] == {
        "http_503": 1,
        "malformed": 1,
        "connection": 1,
        "http_429": 1,
        "timeout": 1,
    }
    assert summary["models"][1]["retries"] == {"timeout": 1}
    bad = [r for r in read_jsonl(tmp_path / "kept.rejects.jsonl") if r["reject_reason"] == "bad_input"]
    assert [b["id"] for b in bad] == ["no-caption", "bad-input@" + str(mcq) + ":7"]
    assert bad[0]["problems"][0]["field"] == "caption"
    assert bad[1]["problems"][0]["field"] == "images" and "gone.jpg" in bad[1]["problems"][0]["message"]


def test_a_request_that_keeps_failing_fails_its_row_and_the_rerun_finishes(start_server, tmp_path, capsys) -> None:
    mcq, images = records(tmp_path)
    caption = next(r["caption"] for r in read_jsonl(mcq) if r["id"] == "train_00002")
    caption_request = (
        f"You cannot see the image, but here is a detailed description of it:\n{caption}\n\n"
        "What stands left of the box in photo 2?\nOptions:\n"
        + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items())
        + "\nUsing the description, reply with the letter of the correct option only."
    )
    # Question 2's caption-only request gets four 500s (the server counts attempts per text, both models share
    # them): with two attempts per request, both models give up and the row fails.
    server = start_server(answer=scripted, faults={caption_request: ["500"] * 4})
    assert run_filter(tmp_path, mcq, images, [server.base_url], "--max-attempts", "2") == 3
    err = capsys.readouterr().err
    assert "1 row(s) failed (http_500 1)" in err and "run the same command again" in err
    [failure] = read_jsonl(tmp_path / "kept.failures.jsonl")
    assert failure["id"] == "train_00002" and failure["reason"] == "http_500"
    assert [r["id"] for r in read_jsonl(tmp_path / "kept.jsonl")] == ["train_00000", "train_00004"]
    server.reset_counts()
    assert run_filter(tmp_path, mcq, images, [server.base_url]) == 0
    assert server.completions == 2  # only the two requests that failed
    assert not (tmp_path / "kept.failures.jsonl").exists()
    assert json.loads((tmp_path / "kept.report.json").read_text())["graded"] == 5


@pytest.mark.parametrize(
    ("urls", "message"),
    [([], "--base-url is required"), (["http://x/v1"] * 3, "give --base-url once, or once per --model (2)")],
)
def test_base_url_count_is_checked(tmp_path, capsys, urls, message) -> None:
    mcq, images = records(tmp_path, 1)
    assert run_filter(tmp_path, mcq, images, urls) == 2
    assert message in capsys.readouterr().err


def test_reference_letter_reading() -> None:
    from vlm_capcurriculum.data.filter import reference_letter

    replies = ["Answer: b", "The answer: C", "(D) a book", "It is a vase.", "I am not sure.", "the vase", "B"]
    assert [reference_letter(r) for r in replies] == ["B", "C", "D", "A", "", "", "B"]
    spec = AnswerSpec("C", "choice", OPTIONS)
    # the article "a" reads as option A: a wrong answer in the reference's reading, unanswered in ours
    assert (grade("It is a lamp", spec, "reference"), grade("It is a lamp", spec)) == ("wrong", "right")
    assert (grade("maybe", spec, "reference"), grade("a vase or a book", spec, "reference")) == ("unanswered", "wrong")


def test_reference_prompts_and_reading(start_server, tmp_path) -> None:
    mcq, images = records(tmp_path)
    asked: list[str] = []

    def reference_scripted(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
        asked.append(text)
        number = int(text.split("photo ")[1].split("?")[0])
        image_answer, caption_answer = SCRIPT[number][model]
        if number == 3 and model == "a":
            image_answer = "It is a mug."  # the article: option A in the reference's reading (here: right)
        return caption_answer if not images else image_answer

    server = start_server(answer=reference_scripted, default_faults=[])
    assert run_filter(tmp_path, mcq, images, [server.base_url], "--prompts", "reference") == 0
    image_prompt = next(text for text in asked if text.startswith("Please answer based on the image."))
    assert image_prompt == (
        "Please answer based on the image.\nQuestion: What stands left of the box in photo "
        + image_prompt.split("photo ")[1].split("?")[0]
        + "?\nOptions:\nA. a mug\nB. a vase\nC. a lamp\nD. a book\n"
        "Please select the correct answer from the options above."
    )
    assert any(text.startswith("Please answer the question based only on the image caption below.") for text in asked)
    kept = [r["id"] for r in read_jsonl(tmp_path / "kept.jsonl")]
    assert kept == ["train_00000", "train_00004"]
    rejects = {r["id"]: r["reject_reason"] for r in read_jsonl(tmp_path / "kept.rejects.jsonl")}
    assert rejects["train_00003"] == "image_right"  # "It is a mug." read as A, the true option
