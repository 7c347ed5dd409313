"""``vlmcc eval --backend vlmevalkit``: the config it writes, the judge check that refuses a silent exact-matching
fallback, and the read-back of handmade VLMEvalKit result files (its formats as read from its source)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_helpers import FaultServer, cli, read_jsonl
from vlmevalkit_files import JUDGE, MODEL, write_results

from vlm_capcurriculum.evaluate.vlmevalkit import PAPER_BENCHMARKS, system_prompt


def test_read_back_of_handmade_result_files(tmp_path) -> None:
    work = tmp_path / "work"
    run = write_results(work)
    out = tmp_path / "kit.jsonl"
    args = [
        "eval",
        "--backend",
        "vlmevalkit",
        "--read-back",
        "--work-dir",
        str(work),
        "--model",
        MODEL,
        "--judge",
        JUDGE,
        "--output",
        str(out),
    ]
    args += [arg for name in ("MMStar", "POPE", "MathVista_MINI") for arg in ("--benchmark", name)]
    assert cli(*args) == 0
    rows = {row["id"]: row for row in read_jsonl(out)}
    assert [rows[f"MMStar:{i}"]["correct"] for i in range(4)] == [True, False, True, True]
    assert [rows[f"POPE:{i}"]["verdict"] for i in range(3)] == ["correct", "wrong", "correct"]
    assert rows["POPE:1"]["extracted"] == "Yes" and rows["POPE:1"]["prediction"] == "Yes."
    assert rows["MathVista_MINI:7"]["verdict"] == "ungraded"
    summary = json.loads((tmp_path / "kit.summary.json").read_text())
    assert summary["by_source"]["MMStar"]["accuracy"] == 0.75
    assert summary["by_source"]["POPE"]["accuracy"] == pytest.approx(2 / 3)
    assert summary["by_source"]["MathVista_MINI"] == {
        "items": 1,
        "correct": 0,
        "accuracy": None,
        "errors": 0,
        "ungraded": 1,
    }
    assert summary["files"]["MathVista_MINI"]["scores"] == [str(run / f"{MODEL}_MathVista_MINI_{JUDGE}_score.json")]
    assert summary["items"] == 8 and summary["accuracy"] == pytest.approx(5 / 7)  # over the graded items


def test_a_missing_predictions_file_is_named(tmp_path, capsys) -> None:
    write_results(tmp_path / "work")
    args = [
        "eval",
        "--backend",
        "vlmevalkit",
        "--read-back",
        "--work-dir",
        str(tmp_path / "work"),
        "--model",
        MODEL,
        "--judge",
        JUDGE,
        "--output",
        str(tmp_path / "o.jsonl"),
        "--benchmark",
        "WeMath",
    ]
    assert cli(*args) == 2
    assert f"no predictions file {MODEL}_WeMath" in capsys.readouterr().err


FAKE_RUN_PY = '''
"""Stands in for VLMEvalKit's run.py in tests: checks the command line and config, writes result files."""
import json, sys
from pathlib import Path
args = sys.argv[1:]
value = lambda flag: args[args.index(flag) + 1]
config = json.loads(Path(value("--config")).read_text())
Path(value("--work-dir")).mkdir(parents=True, exist_ok=True)
(Path(value("--work-dir")) / "seen.json").write_text(json.dumps({"args": args, "config": config}))
sys.path.insert(0, {helpers!r})
from vlmevalkit_files import write_results
write_results(Path(value("--work-dir")))
'''


def fake_vlmevalkit(tmp_path: Path) -> Path:
    home = tmp_path / "VLMEvalKit"
    home.mkdir()
    (home / "run.py").write_text(FAKE_RUN_PY.replace("{helpers!r}", repr(str(Path(__file__).parent))))
    return home


def test_config_judge_check_and_run(tmp_path) -> None:
    home = fake_vlmevalkit(tmp_path)
    with FaultServer(answer=lambda *_: "ready") as judge:
        out = tmp_path / "kit.jsonl"
        args = [
            "eval",
            "--backend",
            "vlmevalkit",
            "--vlmevalkit",
            str(home),
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            MODEL,
            "--judge",
            JUDGE,
            "--judge-base-url",
            judge.base_url,
            "--output",
            str(out),
        ]
        args += [arg for name in ("MMStar", "POPE", "MathVista_MINI") for arg in ("--benchmark", name)]
        assert cli(*args) == 0
        assert judge.completions == 1  # asked once before the run
    seen = json.loads((tmp_path / "kit.vlmevalkit" / "seen.json").read_text())
    model = seen["config"]["model"][MODEL]
    assert model["class"] == "LMDeployAPI" and model["api_base"] == "http://127.0.0.1:9/v1/chat/completions"
    assert model["temperature"] == 0.0 and model["max_tokens"] == 16384 and model["system_prompt"] == system_prompt()
    assert model["system_prompt"].startswith("You FIRST think about the reasoning process")
    assert seen["config"]["data"]["POPE"] == {"class": PAPER_BENCHMARKS["POPE"], "dataset": "POPE"}
    assert seen["args"][seen["args"].index("--judge") + 1] == JUDGE
    assert len(read_jsonl(out)) == 8


def test_a_judge_that_does_not_answer_refuses_the_run(tmp_path, capsys) -> None:
    home = fake_vlmevalkit(tmp_path)
    with FaultServer(default_faults=["500"] * 10) as judge:
        args = [
            "eval",
            "--backend",
            "vlmevalkit",
            "--vlmevalkit",
            str(home),
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--model",
            MODEL,
            "--judge",
            JUDGE,
            "--judge-base-url",
            judge.base_url,
            "--retry-delay",
            "0",
            "--output",
            str(tmp_path / "kit.jsonl"),
            "--benchmark",
            "MMStar",
        ]
        assert cli(*args) == 2
    assert "silently fall back to exact matching" in capsys.readouterr().err
    assert not (tmp_path / "kit.vlmevalkit" / "seen.json").exists()  # VLMEvalKit never started
