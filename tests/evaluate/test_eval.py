"""``vlmcc eval`` against a scripted OpenAI-compatible server on loopback: every item counted, verdicts our
verifiers', accuracies per benchmark, a failed request reported and retried on the next run."""

from __future__ import annotations

import json

import pytest
from eval_helpers import FaultServer, benchmarks, cli, read_jsonl, scripted, write_jsonl

from vlm_capcurriculum.data.prompting import PromptTemplate


@pytest.fixture
def server():
    started: list[FaultServer] = []

    def start(**options):
        started.append(FaultServer(**options).start())
        return started[-1]

    yield start
    for one in started:
        one.stop()


def eval_args(server, math, pope, images, out, *extra: str) -> list[str]:
    return [
        "eval",
        "--input",
        str(math),
        "--input",
        str(pope),
        "--image-root",
        str(images),
        "--base-url",
        server.base_url,
        "--model",
        "staged",
        "--output",
        str(out),
        "--retry-delay",
        "0.001",
        "--max-attempts",
        "2",
        *extra,
    ]


def test_accuracy_per_benchmark_and_every_item_counted(server, tmp_path) -> None:
    math, pope, images = benchmarks(tmp_path)
    # m2's first attempt is refused (HTTP 400, not retried): an error row that counts as wrong, then a rerun fixes it.
    m2 = PromptTemplate.training_format().fill(problem="What is 2 + 2?")
    srv = server(answer=scripted, faults={m2: ["400"]})
    out = tmp_path / "staged.eval.jsonl"
    assert cli(*eval_args(srv, math, pope, images, out)) == 3
    rows = {row["id"]: row for row in read_jsonl(out)}
    assert list(rows) == ["m1", "m2", "m3", "m4", "m5", "p1", "p2", "p3", "p4"]  # input order, nothing dropped
    assert rows["m2"]["verdict"] == "error" and "400" in rows["m2"]["error"]
    assert rows["m3"] == {**rows["m3"], "verdict": "correct", "extracted": "6"}  # lenient: no box needed
    assert rows["m4"]["verdict"] == "wrong" and rows["m4"]["extracted"] == "9"
    assert rows["m5"]["verdict"] == "no_answer" and rows["m5"]["correct"] is False
    assert rows["p3"]["verdict"] == "correct"  # "yes" is option A's text
    assert rows["p4"]["verdict"] == "wrong" and rows["p4"]["extracted"] == "A"  # the last box counts
    assert rows["p1"]["response_tokens"] == 3 and rows["p1"]["length_source"] == "server"  # usage.completion_tokens
    assert rows["p1"]["images"] == ["a.png"] and rows["p1"]["answer"] == "A"  # what the perception audit needs
    summary = json.loads((tmp_path / "staged.eval.summary.json").read_text())
    assert summary["by_source"]["mathbench"] == {"items": 5, "correct": 2, "accuracy": 0.4, "errors": 1}
    assert summary["by_source"]["pope"] == {"items": 4, "correct": 2, "accuracy": 0.5, "errors": 0}
    assert (summary["items"], summary["correct"], summary["errors"]) == (9, 4, 1)
    assert summary["verdicts"] == {"correct": 4, "wrong": 3, "no_answer": 1, "error": 1}
    assert summary["sampling"]["temperature"] == 0.0
    first_body = srv.received[0].body
    assert first_body["temperature"] == 0.0 and first_body["messages"][0]["role"] == "user"  # training prompt only

    answered = srv.completions
    assert cli(*eval_args(srv, math, pope, images, out)) == 0
    assert srv.completions == answered + 1  # only the failed item is asked again; the rest comes from the cache
    summary = json.loads((tmp_path / "staged.eval.summary.json").read_text())
    assert summary["by_source"]["mathbench"]["accuracy"] == 0.6 and summary["accuracy"] == 5 / 9
    assert summary["response_tokens"] == {"mean": 3.0, "counted": 9, "sources": {"server": 9}}


def test_invalid_rows_are_listed_and_counted(server, tmp_path) -> None:
    broken = write_jsonl(
        tmp_path / "broken.jsonl",
        [
            {"id": "ok", "capability": "text_reasoning", "problem": "What is 1 + 1?", "answer": "2", "source": "x"},
            "{not json",
            {"id": "noanswer", "capability": "text_reasoning", "problem": "What is 2 + 2?", "source": "x"},
        ],
    )
    srv = server(answer=scripted)
    out = tmp_path / "out.jsonl"
    args = ["eval", "--input", str(broken), "--base-url", srv.base_url, "--model", "m", "--output", str(out)]
    assert cli(*args) == 3
    assert [row["id"] for row in read_jsonl(out)] == ["ok"]
    rejects = read_jsonl(tmp_path / "out.rejects.jsonl")
    assert [r["location"].rsplit(":", 1)[-1] for r in rejects] == ["2", "3"]
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["invalid_rows"] == 2 and summary["by_source"]["x"]["accuracy"] == 1.0


def test_cache_keeps_token_counts_and_reads_older_files(tmp_path) -> None:
    import sqlite3

    from vlm_capcurriculum.data.cache import ResponseCache
    from vlm_capcurriculum.data.client import Sample

    old = tmp_path / "old.sqlite"  # a cache written before completion_tokens existed
    db = sqlite3.connect(old)
    db.executescript(
        "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '1');"
        "CREATE TABLE samples (key TEXT NOT NULL, idx INTEGER NOT NULL, model TEXT NOT NULL, text TEXT NOT NULL,"
        " finish_reason TEXT, created REAL NOT NULL, PRIMARY KEY (key, idx)) WITHOUT ROWID;"
        "INSERT INTO samples VALUES ('k', 0, 'm', 'old answer', 'stop', 0);"
    )
    db.commit()
    db.close()
    cache = ResponseCache(old)
    assert cache.get("k", 1) == {0: Sample("old answer", "stop", None)}
    cache.store_many([("k2", "m", "{}", [(0, Sample("new", "length", 12))])])
    cache.close()
    cache = ResponseCache(old)
    assert cache.get("k2", 1) == {0: Sample("new", "length", 12)}
    cache.close()


def test_benchmark_rows_need_no_capability(server, tmp_path) -> None:
    rows = [
        {"id": "a", "problem": "What is 1 + 1?", "answer": "2", "source": "bench"},
        {"id": "b", "problem": "What is 4 + 4?", "answer": "8", "source": "bench"},
    ]
    bench = write_jsonl(tmp_path / "bench.jsonl", rows)
    srv = server(answer=scripted)
    out = tmp_path / "out.jsonl"
    assert cli("eval", "--input", str(bench), "--base-url", srv.base_url, "--model", "m", "--output", str(out)) == 0
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["by_source"]["bench"] == {"items": 2, "correct": 1, "accuracy": 0.5, "errors": 0}
    assert list(summary["by_capability"]) == ["unlabelled"]
