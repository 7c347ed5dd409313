"""generate, filter and pass@K through the CLI against a real server: ``transformers serve`` with the tiny Qwen2.5-VL
(two seeds standing in for the paper's two filter models) and Qwen3-VL (the pass@K policy) on CPU.

The tiny models are random, so what they answer is noise; what this proves is the plumbing against a maintained
server: request bodies (chat turns, base64 images, sampling fields) accepted, answers parsed, graded and cached,
rejects and reports written."""

from __future__ import annotations

import json

from pipeline_helpers import cli, docci_corpus, read_jsonl, write_jsonl


def test_generate_filter_passk_against_transformers_serve(tiny_server, tmp_path) -> None:
    url, models = tiny_server.base_url, tiny_server.models
    captions, images = docci_corpus(tmp_path, 2)
    common = ["--base-url", url, "--max-tokens", "8", "--concurrency", "2", "--timeout", "120"]

    mcq = tmp_path / "mcq.jsonl"
    args = ["generate", "--captions", str(captions), "--source", "docci", "--image-root", str(images)]
    assert cli(*args, "--model", models["filter_a"], *common, "--output", str(mcq)) == 0
    summary = json.loads((tmp_path / "mcq.summary.json").read_text())
    assert summary["rows_in"] == 2 and summary["rows_out"] + sum(summary["rejected"].values()) == 2
    assert summary["models"][0]["generated_samples"] == 2 and summary["models"][0]["completion_tokens"] > 0

    records = [
        {
            "id": f"q{i}",
            "capability": "perception",
            "problem": "<image>What stands left of the box?\nOptions:\nA. a mug\nB. a vase\nC. a lamp\nD. a book",
            "images": [row["image_file"]],
            "answer": "A",
            "choices": {"A": "a mug", "B": "a vase", "C": "a lamp", "D": "a book"},
            "caption": row["description"],
        }
        for i, row in enumerate(read_jsonl(captions))
    ]
    questions = write_jsonl(tmp_path / "questions.jsonl", records)
    kept = tmp_path / "kept.jsonl"
    args = ["filter", "--input", str(questions), "--image-root", str(images), "--output", str(kept)]
    args += ["--model", models["filter_a"], "--model", models["filter_b"]]
    assert cli(*args, *common) == 0
    report = json.loads((tmp_path / "kept.report.json").read_text())
    assert report["graded"] == 2 and len(report["models"]) == 2
    for model in report["models"]:
        cells = [n for by_caption in model["confusion"].values() for n in by_caption.values()]
        assert sum(cells) == 2 and model["image_accuracy"] is not None
    written = len(read_jsonl(kept)) + len(read_jsonl(tmp_path / "kept.rejects.jsonl"))
    assert written == 2 and report["kept"] == len(read_jsonl(kept))
    calls = json.loads((tmp_path / "kept.summary.json").read_text())["models"]
    assert [m["generated_samples"] for m in calls] == [4, 4]  # image-only and caption-only, per question

    stage = write_jsonl(
        tmp_path / "stage.jsonl",
        [
            {"id": "t", "capability": "text_reasoning", "problem": "What is 2 + 2?", "answer": "4"},
            {**records[0], "id": "v", "capability": "visual_reasoning"},
        ],
    )
    scored = tmp_path / "scored.jsonl"
    args = ["passk", "--input", str(stage), "--image-root", str(images), "--output", str(scored), "-k", "2"]
    # transformers serve rejects the top_k field (HTTP 422) the paper's default sends: --top-k 0 sends none
    assert cli(*args, "--model", models["policy"], "--seed", "3", *common) == 3
    assert "Unexpected fields in the request: {'top_k'}" in json.dumps(
        read_jsonl(tmp_path / "scored.failures.jsonl")[0]
    )
    assert cli(*args, "--model", models["policy"], "--seed", "3", "--top-k", "0", *common) == 0
    rows = read_jsonl(scored)
    assert [r["id"] for r in rows] == ["t", "v"]
    assert all(r["pass_rate"] in (0.0, 0.5, 1.0) and len(r["correctness"]) == 2 for r in rows)
    # run again: every answer from the cache, same output
    before = scored.read_bytes()
    assert cli(*args, "--model", models["policy"], "--seed", "3", "--top-k", "0", *common) == 0
    assert scored.read_bytes() == before
    assert json.loads((tmp_path / "scored.summary.json").read_text())["models"][0]["http_attempts"] == 0
