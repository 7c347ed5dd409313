"""``vlmcc data passk``: K samples per question graded by our rewards, written back as ``pass_rate``."""

from __future__ import annotations

import json

from pipeline_helpers import cli, docci_corpus, read_jsonl, write_jsonl

from vlm_capcurriculum.schema import read_records


def corpus(tmp_path):
    _, images = docci_corpus(tmp_path, 2)
    rows = [
        {"id": "t1", "capability": "text_reasoning", "problem": "What is 2 + 2?", "answer": "4"},
        {
            "id": "v1",
            "capability": "visual_reasoning",
            "problem": "<image>How many mugs and boxes are there in all?",
            "images": ["train_00000.jpg"],
            "answer": "2",
            "answer_type": "number",
            "pass_rate": 0.1,  # replaced
        },
        {
            "id": "p1",
            "capability": "perception",
            "problem": "<image>What colour is the mug?\nOptions:\nA. red\nB. blue",
            "images": ["train_00001.jpg"],
            "answer": "A",
            "choices": {"A": "red", "B": "blue"},
            "predictions": ["stale"],  # from an earlier run: replaced, never kept stale
        },
        {"id": "bad", "capability": "text_reasoning", "problem": "x", "answer": "1", "pass_rate": 2.0},
    ]
    return write_jsonl(tmp_path / "stage.jsonl", rows), images


def answer(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    sample = seed + index if seed is not None else index  # the sample's number, however the server is asked
    if "2 + 2" in text:
        return f"<think>adding</think> \\boxed{{{4 if sample % 2 == 0 else 5}}}"
    if "mugs and boxes" in text:
        return "<think>one mug, one box</think> \\boxed{2}" if sample < 1 + 7 else "\\boxed{3}"
    return "<think>it is red</think> \\boxed{A. red}" if sample % 4 else "<think>hmm</think> \\boxed{blue}"


def test_pass_rates_for_every_capability(start_server, tmp_path) -> None:
    stage, images = corpus(tmp_path)
    from vlm_capcurriculum.data.prompting import PromptTemplate
    from vlm_capcurriculum.prompts import render_prompt

    text_prompt = PromptTemplate.training_format().fill(problem="What is 2 + 2?")
    assert text_prompt == render_prompt("What is 2 + 2?")  # asked exactly as the trainer asks
    server = start_server(answer=answer, faults={text_prompt: ["502", "truncated", "slow:3"]})
    out = tmp_path / "scored.jsonl"
    args = ["passk", "--input", str(stage), "--image-root", str(images), "--base-url", server.base_url]
    args += ["--model", "policy", "-k", "4", "--seed", "7", "--output", str(out), "--retry-delay", "0.01"]
    assert cli(*args, "--timeout", "1") == 0
    retries = json.loads((tmp_path / "scored.summary.json").read_text())["models"][0]["retries"]
    assert retries == {"http_502": 1, "truncated": 1, "timeout": 1}
    rows = {row["id"]: row for row in read_jsonl(out)}
    assert list(rows) == ["t1", "v1", "p1"]
    # seeds 7..10: t1 right on even samples, v1 right on sample 7 only, p1 wrong on sample 8
    assert (rows["t1"]["pass_rate"], rows["v1"]["pass_rate"], rows["p1"]["pass_rate"]) == (0.5, 0.25, 0.75)
    assert rows["t1"]["predictions"] == ["5", "4", "5", "4"] and rows["t1"]["correctness"] == [False, True, False, True]
    assert rows["p1"]["predictions"] == ["A. red", "blue", "A. red", "A. red"]
    assert "responses" not in rows["t1"]
    # text-only rows are sent as text, image rows with their image, each in the paper's training prompt
    answered = [r.body for r in server.received if r.outcome == "ok"]
    assert len(answered) == 3 and all(b["n"] == 4 and b["seed"] == 7 for b in answered)
    text_body = next(b for b in answered if "2 + 2" in json.dumps(b))
    assert isinstance(text_body["messages"][0]["content"], str)
    assert text_body["messages"][0]["content"].startswith("What is 2 + 2? You FIRST think about the reasoning")
    assert (text_body["temperature"], text_body["top_p"], text_body["max_tokens"]) == (0.7, 0.9, 1024)
    [bad] = read_jsonl(tmp_path / "scored.rejects.jsonl")
    assert bad["reject_reason"] == "bad_input" and bad["problems"][0]["field"] == "pass_rate"
    # the output reads back as records with pass rates (what difficulty curricula order by)
    assert [r.pass_rate for r in read_records(out, image_root=images).records] == [0.5, 0.25, 0.75]

    # K=6 later: only two more samples per question are generated (one request each, seeded 7 + 4)
    server.faults = {}
    server.reset_counts()
    assert cli(*[a if a != "4" else "6" for a in args], "--keep-responses") == 0
    assert [(r.body["n"], r.body["seed"]) for r in server.received] == [(2, 11)] * 3
    again = {row["id"]: row for row in read_jsonl(out)}
    assert again["t1"]["pass_rate"] == 0.5 and len(again["t1"]["responses"]) == 6


def test_a_server_that_ignores_n_is_asked_once_per_sample(start_server, tmp_path) -> None:
    stage, images = corpus(tmp_path)
    server = start_server(answer=answer, honour_n=False)
    out = tmp_path / "scored.jsonl"
    args = ["passk", "--input", str(stage), "--image-root", str(images), "--base-url", server.base_url]
    assert cli(*args, "--model", "policy", "-k", "4", "--seed", "7", "--output", str(out), "--limit", "1") == 0
    assert sorted(r.body["seed"] for r in server.received) == [7, 8, 9, 10]
    assert read_jsonl(out)[0]["pass_rate"] == 0.5


def test_reference_sampling_and_prompt_placement(start_server, tmp_path, capsys) -> None:
    stage, images = corpus(tmp_path)
    server = start_server(answer=answer)
    out = tmp_path / "scored.jsonl"
    args = ["passk", "--input", str(stage), "--image-root", str(images), "--base-url", server.base_url]
    args += ["--model", "policy", "-k", "4", "--seed", "7", "--limit", "1"]
    assert cli(*args, "--output", str(out), "--prompt-style", "reference", "--report") == 0
    [body] = [r.body for r in server.received]
    assert body["top_k"] == 20  # the reference's GenerationConfig default, which reached vLLM
    system, user = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("You FIRST think about the reasoning process")
    assert "<thinking> </thinking> tags" in system["content"] and system["content"].endswith(
        "\\boxed{final answer here}"
    )
    assert (user["role"], user["content"]) == ("user", "What is 2 + 2?")  # the problem alone
    assert "pass@4: 1 questions, mean pass rate 0.500" in capsys.readouterr().out
    server.reset_counts()
    assert cli(*args, "--output", str(tmp_path / "plain.jsonl"), "--top-k", "0") == 0
    assert "top_k" not in server.received[0].body  # 0: not sent (servers that reject the field)
    assert cli(*args, "--output", str(out), "--prompt-style", "reference", "--system", "x") == 2


def report(*args: str) -> int:
    from vlm_capcurriculum.cli import main

    return main(["data", "passk-report", *args])


def test_passk_report_histogram_and_the_file_without_solved_questions(tmp_path, capsys) -> None:
    rates = [0.0, 0.25, 0.25, 1.0, 0.5, 1.0]
    rows = [{"id": f"q{i}", "problem": "p", "answer": "1", "pass_rate": r} for i, r in enumerate(rates)]
    scored = write_jsonl(tmp_path / "scored.jsonl", rows)
    learnable = tmp_path / "learnable.jsonl"
    assert report("--input", str(scored), "-k", "4", "--json", "--without-solved", str(learnable)) == 0
    captured = capsys.readouterr()
    histogram = json.loads(captured.out)
    assert histogram["correct_counts"] == [1, 2, 1, 0, 2] and histogram["always_solved"] == 2
    assert histogram["mean_pass_rate"] == sum(rates) / len(rates)
    assert [r["id"] for r in read_jsonl(learnable)] == ["q0", "q1", "q2", "q4"]  # order kept, rate-1 rows dropped
    assert "dropped 2 with pass rate 1" in captured.err
    assert report("--input", str(scored), "-k", "3") == 2  # 0.25 is no multiple of 1/3
    assert "not a multiple of 1/3" in capsys.readouterr().err
    write_jsonl(tmp_path / "unscored.jsonl", [{"id": "x", "problem": "p", "answer": "1"}])
    assert report("--input", str(tmp_path / "unscored.jsonl")) == 2
    assert "unscored.jsonl:1: field 'pass_rate'" in capsys.readouterr().err
