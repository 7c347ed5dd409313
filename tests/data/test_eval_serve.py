"""``vlmcc eval`` against a real server: the tiny Qwen3-VL served by ``transformers serve`` (the data tests' session
server, so this adds only its own requests). Every item comes back graded by our verifiers on the server's own
replies, with the server's token counts."""

from __future__ import annotations

import json

from pipeline_helpers import read_jsonl, write_jsonl

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.evaluate.grading import grade


def test_eval_of_a_served_checkpoint(tiny_server, images, tmp_path) -> None:
    root = images["red"].parent
    rows = [
        {"id": "t1", "capability": "text_reasoning", "problem": "What is 2 + 3?", "answer": "5", "source": "mathtext"},
        {
            "id": "v1",
            "capability": "perception",
            "problem": "<image>Is the square red?\nA. yes\nB. no",
            "images": ["red.png"],
            "answer": "A",
            "choices": {"A": "yes", "B": "no"},
            "source": "pope",
        },
        {
            "id": "v2",
            "capability": "perception",
            "problem": "<image>Is the square red?\nA. yes\nB. no",
            "images": ["green.png"],
            "answer": "B",
            "choices": {"A": "yes", "B": "no"},
            "source": "pope",
        },
    ]
    bench = write_jsonl(tmp_path / "bench.jsonl", rows)
    out = tmp_path / "policy.eval.jsonl"
    args = ["eval", "--input", str(bench), "--image-root", str(root), "--base-url", tiny_server.base_url]
    args += ["--model", tiny_server.models["policy"], "--max-tokens", "12", "--concurrency", "1", "--timeout", "120"]
    assert main([*args, "--output", str(out), "--no-progress"]) == 0
    results = read_jsonl(out)
    assert [row["id"] for row in results] == ["t1", "v1", "v2"]
    # The verdicts are exactly our verifiers' on what the server replied (a random tiny model: mostly wrong).
    expected = grade([r["prediction"] for r in results], ["5", "A", "B"], ["math", "choice", "choice"])
    assert [row["correct"] for row in results] == [g.correct for g in expected]
    assert [row["extracted"] for row in results] == [g.extracted for g in expected]
    for row in results:
        assert row["length_source"] == "server" and 0 < row["response_tokens"] <= 12
    summary = json.loads((tmp_path / "policy.eval.summary.json").read_text())
    assert summary["items"] == 3 and summary["by_source"]["pope"]["items"] == 2
    assert summary["correct"] == sum(g.correct for g in expected)
    hits = sum(row["finish_reason"] == "length" for row in results)
    assert summary["length_limit_hit"]["count"] == hits


def test_tokenizer_counts_when_the_server_reports_no_usage(tiny_server) -> None:
    from transformers import AutoTokenizer

    from vlm_capcurriculum.data.client import Sample
    from vlm_capcurriculum.evaluate.builtin import TokenCounter, response_length

    checkpoint = tiny_server.models["policy"]  # the served checkpoint's own tokenizer
    text = "<think>2 + 2 = 4</think> \\boxed{4}"
    expected = len(AutoTokenizer.from_pretrained(checkpoint)(text, add_special_tokens=False)["input_ids"])
    counter = TokenCounter(checkpoint)
    assert response_length(Sample(text, "stop"), counter) == (expected, "tokenizer")
    assert response_length(Sample(text, "stop", 17), counter) == (17, "server")  # the server's count wins
    assert response_length(Sample(text, "stop"), None) == (None, None)
