"""``vlmcc analyze perception`` with a scripted judge on the loopback server, and ``vlmcc analyze length``."""

from __future__ import annotations

import json

import pytest
from eval_helpers import FaultServer, benchmarks, cli, read_jsonl, scripted, write_jsonl

from vlm_capcurriculum.evaluate.perception import parse_judge_reply
from vlm_capcurriculum.evaluate.stats import cohen_kappa, sign_test, wilson

#: The judge's replies, keyed by a phrase of the audited response: every format a real judge produces.
JUDGE_REPLIES = {
    "4 + 4 = 9": '```json\n{"label": "reasoning", "step": "4 + 4 = 9", "why": "wrong sum"}\n```',
    "I cannot tell": 'My verdict: {"label": "Other", "step": null, "why": "no reasoning"} Hope that helps.',
    "looks red": '{"label": "perception", "step": "looks red", "why": "the object is blue"}',
    "maybe": "I think it is a perception error.",  # no JSON: unparsable, still counted
}


def judge(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    if "NOT shown" in text:  # the control run: this judge calls everything reasoning without the image
        return '{"label": "reasoning", "step": "-", "why": "cannot see the image"}'
    return next(reply for phrase, reply in JUDGE_REPLIES.items() if phrase in text)


@pytest.fixture
def servers():
    started: list[FaultServer] = []
    yield lambda **options: started.append(FaultServer(**options).start()) or started[-1]
    for one in started:
        one.stop()


def test_audit_shares_control_and_human_agreement(servers, tmp_path) -> None:
    math, pope, images = benchmarks(tmp_path)
    model = servers(answer=scripted)
    evaluated = tmp_path / "staged.eval.jsonl"
    args = ["eval", "--input", str(math), "--input", str(pope), "--image-root", str(images)]
    assert cli(*args, "--base-url", model.base_url, "--model", "staged", "--output", str(evaluated)) == 0
    human = write_jsonl(
        tmp_path / "human.jsonl",
        [
            {"id": "m4", "label": "reasoning"},
            {"id": "m5", "label": "other"},
            {"id": "p2", "label": "perception"},
            {"id": "p4", "label": "perception"},
        ],
    )
    judge_server = servers(answer=judge)
    audit = tmp_path / "staged.audit.jsonl"
    args = [
        "analyze",
        "perception",
        "--input",
        str(evaluated),
        "--image-root",
        str(images),
        "--base-url",
        judge_server.base_url,
        "--model",
        "haiku",
        "--output",
        str(audit),
        "--control",
        "--human-labels",
        str(human),
        "--no-progress",
    ]
    assert cli(*args) == 0
    labels = {row["id"]: row for row in read_jsonl(audit)}
    assert {k: v["label"] for k, v in labels.items()} == {
        "m4": "reasoning",
        "m5": "other",
        "p2": "perception",
        "p4": "unparsable",
    }
    assert labels["m4"]["step"] == "4 + 4 = 9" and labels["p4"]["reply"] == JUDGE_REPLIES["maybe"]
    # The judge saw p2's image (a data URL) with the gold answer's option text; the control request has no image.
    [p2_request] = [r.body for r in judge_server.received if "looks red" in r.prompt and "NOT shown" not in r.prompt]
    assert [part["type"] for part in p2_request["messages"][0]["content"]] == ["image_url", "text"]
    assert "Correct answer: B (no)" in p2_request["messages"][0]["content"][1]["text"]
    control_requests = [r.body for r in judge_server.received if "NOT shown" in r.prompt]
    assert len(control_requests) == 4 and all(isinstance(b["messages"][0]["content"], str) for b in control_requests)

    summary = json.loads((tmp_path / "staged.audit.summary.json").read_text())
    assert summary["audited"] == 4 and summary["eval_rows"] == 9 and summary["not_audited"] == {"correct": 5}
    assert summary["audited_without_image"] == 2  # m4 and m5 are text questions
    shares = {label: entry["share"] for label, entry in summary["labels"].items()}
    assert shares == {
        "perception": 0.25,
        "reasoning": 0.25,
        "misunderstanding": 0.0,
        "other": 0.25,
        "unparsable": 0.25,
        "error": 0.0,
    }
    assert summary["labels"]["perception"]["ci95"] == pytest.approx([0.0456, 0.6994], abs=1e-4)  # Wilson, 1 of 4
    assert summary["control"]["labels"]["reasoning"]["share"] == 1.0
    assert summary["control"]["agreement_with_image_run"]["agreement"] == 0.25
    assert summary["human_agreement"]["agreement"] == 0.75
    assert summary["human_agreement"]["kappa"] == pytest.approx(2 / 3)  # p_o 3/4, p_e 1/4


def test_judge_reply_parsing() -> None:
    assert parse_judge_reply('```\n{"label": "misunderstanding", "why": "x"}\n```').label == "misunderstanding"
    assert parse_judge_reply('{"label": "vision"} then {"label": "perception"}').label == "perception"
    assert parse_judge_reply('{"label": "Perception error", "step": 3}').step == "3"
    assert parse_judge_reply('{"label": "**Reasoning_error**"}').label == "reasoning"
    assert parse_judge_reply('{"label": "not perception"}').label == "unparsable"
    assert parse_judge_reply('{"label": "perception"').label == "unparsable"  # cut off
    assert parse_judge_reply("").label == "unparsable"


def test_statistics_against_known_values() -> None:
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 0) is None
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.5)
    assert sign_test([1, 2, 3, 4, 5]) == pytest.approx(0.0625)  # 2 * (1/2)^5
    assert sign_test([1, -1, 0]) == 1.0


def test_length_per_checkpoint_and_paired_comparison(tmp_path) -> None:
    def rows(lengths: dict[str, tuple[int, bool, str]]) -> list[dict]:
        return [
            {
                "id": i,
                "correct": ok,
                "verdict": "correct" if ok else "wrong",
                "response_tokens": n,
                "length_source": "server",
                "finish_reason": reason,
            }
            for i, (n, ok, reason) in lengths.items()
        ]

    merged = {f"q{i}": (100 + 10 * i, True, "stop") for i in range(8)} | {"q8": (2048, False, "length")}
    staged = {f"q{i}": (80 + 10 * i, i != 0, "stop") for i in range(8)} | {"q8": (300, True, "stop")}
    merged_path = write_jsonl(tmp_path / "merged.jsonl", rows(merged))
    staged_path = write_jsonl(tmp_path / "staged.jsonl", rows(staged))
    out = tmp_path / "length.json"
    assert (
        cli(
            "analyze",
            "length",
            f"merged={merged_path}",
            f"staged/03-visual={staged_path}",
            "--compare",
            "merged",
            "staged/03-visual",
            "--output",
            str(out),
        )
        == 0
    )
    result = json.loads(out.read_text())
    m = result["checkpoints"]["merged"]
    assert (
        m["all"]["n"] == 9 and m["correct"]["mean"] == 135.0 and m["length_limit_hit"] == {"count": 1, "share": 1 / 9}
    )
    assert result["checkpoints"]["staged/03-visual"]["run"] == "staged"
    assert result["checkpoints"]["staged/03-visual"]["stage"] == "03-visual"
    comparison = result["comparison"]
    assert comparison["both_correct"] == 7  # q1..q7 (q0 wrong in staged, q8 wrong in merged)
    assert comparison["first_lengths"]["mean"] == 140.0 and comparison["second_lengths"]["mean"] == 120.0
    assert comparison["relative_change_of_mean"] == pytest.approx(-20 / 140)
    from scipy.stats import wilcoxon

    assert comparison["test"]["p_value"] == pytest.approx(wilcoxon([-20.0] * 7).pvalue)
    assert comparison["test"]["sign_test_p_value"] == pytest.approx(2 / 2**7)


def test_failed_judge_requests_are_counted_not_dropped(servers, tmp_path) -> None:
    math, _, images = benchmarks(tmp_path)
    model = servers(answer=scripted)
    evaluated = tmp_path / "e.jsonl"
    args = ["eval", "--input", str(math), "--image-root", str(images), "--base-url", model.base_url]
    assert cli(*args, "--model", "staged", "--output", str(evaluated)) == 0
    refusing = servers(answer=judge, default_faults=["400"])
    audit = tmp_path / "audit.jsonl"
    args = [
        "analyze",
        "perception",
        "--input",
        str(evaluated),
        "--base-url",
        refusing.base_url,
        "--model",
        "j",
        "--output",
        str(audit),
        "--no-progress",
    ]
    assert cli(*args) == 3
    assert [row["label"] for row in read_jsonl(audit)] == ["error", "error"]  # m4 and m5
    summary = json.loads((tmp_path / "audit.summary.json").read_text())
    assert summary["labels"]["error"] == {"count": 2, "share": 1.0, "ci95": pytest.approx([0.3424, 1.0], abs=1e-4)}
