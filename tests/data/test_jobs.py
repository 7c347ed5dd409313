"""The job runner: ordered atomic output, rejects, failures that the next run retries, clear input errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from data_helpers import FAST_RETRY
from fault_server import expected_answer

from vlm_capcurriculum.data.io import partial_path, read_jsonl
from vlm_capcurriculum.data.jobs import Reject, run_job
from vlm_capcurriculum.data.request import ChatRequest, InputError


def read(path: Path) -> list[dict]:
    return [row for _, row in read_jsonl(path)]


def ask(backend):
    async def process(row, runner):
        images = [row["image"]] if "image" in row else []
        answer = await runner.complete(backend, ChatRequest.user(row["q"], images))
        if row.get("drop"):
            return Reject("dropped", {"id": row["id"], "answer": answer.text})
        return {"id": row["id"], "answer": answer.text}

    return process


def test_output_is_in_input_order_and_counts_add_up(start_server, backend_for, tmp_path) -> None:
    # Early rows are slow, so later rows finish first; the file is still in input order.
    server = start_server(faults={f"q{i}": [f"slow:{0.2 - 0.04 * i:.2f}"] for i in range(5)})
    rows = [{"id": f"r{i}", "q": f"q{i}", **({"drop": True} if i % 7 == 3 else {})} for i in range(30)]
    out = tmp_path / "out.jsonl"
    summary = run_job(
        rows,
        ask(backend_for(server, max_concurrency=8)),
        out,
        cache=tmp_path / "c.sqlite",
        rejects=tmp_path / "rejects.jsonl",
        summary=tmp_path / "summary.json",
        progress=False,
        print_summary=False,
    )
    kept = [r for r in rows if not r.get("drop")]
    assert read(out) == [{"id": r["id"], "answer": expected_answer("m1", r["q"], [], None, 0)} for r in kept]
    assert [r["id"] for r in read(tmp_path / "rejects.jsonl")] == [r["id"] for r in rows if r.get("drop")]
    assert read(tmp_path / "rejects.jsonl")[0]["reject_reason"] == "dropped"
    assert (summary.rows_in, summary.rows_out, dict(summary.rejected), dict(summary.failed)) == (
        30,
        26,
        {"dropped": 4},
        {},
    )
    assert summary.ok and not (tmp_path / "out.failures.jsonl").exists()
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["rows_out"] == 26 and saved["models"][0]["generated_samples"] == 30
    assert not partial_path(out).exists()


def test_failed_rows_are_listed_then_done_by_the_next_run(start_server, backend_for, tmp_path) -> None:
    server = start_server(faults={"q2": ["500"] * FAST_RETRY.max_attempts, "q5": ["400"]})
    rows = [{"id": i, "q": f"q{i}"} for i in range(8)]
    out, cache = tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    first = run_job(rows, ask(backend_for(server)), out, cache=cache, progress=False, print_summary=False)
    assert not first.ok and dict(first.failed) == {"http_500": 1, "http_400": 1}
    assert [r["id"] for r in read(out)] == [0, 1, 3, 4, 6, 7]
    failures = read(tmp_path / "out.failures.jsonl")
    assert [(f["id"], f["reason"]) for f in failures] == [(2, "http_500"), (5, "http_400")]
    assert "HTTP 400" in failures[1]["message"] and "injected 400 for 'q5'" in failures[1]["message"]

    before = server.completions
    second = run_job(rows, ask(backend_for(server)), out, cache=cache, progress=False, print_summary=False)
    assert second.ok and server.completions == before + 2  # only the two failed rows
    assert [r["id"] for r in read(out)] == list(range(8))
    assert not (tmp_path / "out.failures.jsonl").exists()  # no stale list once everything is done


def test_bad_input_is_reported_against_its_row(start_server, backend_for, images, tmp_path) -> None:
    server = start_server()
    rows = [
        {"id": "a", "q": "<image> q", "image": str(images["red"])},
        {"id": "b", "q": "<image> q", "image": str(tmp_path / "missing.png")},
    ]
    summary = run_job(
        rows, ask(backend_for(server)), tmp_path / "o.jsonl", cache=None, progress=False, print_summary=False
    )
    assert dict(summary.failed) == {"bad_input": 1} and summary.rows_out == 1
    [failure] = read(tmp_path / "o.failures.jsonl")
    assert failure["id"] == "b" and "missing.png" in failure["message"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"id": "a"}, {"id": "b"}, {"id": "a"}], "input rows 1 and 3 share id 'a'"),
        ([{"id": "a"}, {"q": "x"}], "input row 2: no usable 'id'"),
    ],
)
def test_ids_are_checked_before_any_work(start_server, backend_for, tmp_path, rows, message) -> None:
    server = start_server()
    with pytest.raises(InputError, match=message):
        run_job(rows, ask(backend_for(server)), tmp_path / "o.jsonl", cache=None, progress=False)
    assert not server.received


def test_a_bug_in_process_stops_the_run_and_keeps_the_previous_output(start_server, backend_for, tmp_path) -> None:
    server = start_server()
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "previous"}\n')
    backend = backend_for(server)

    async def buggy(row, runner):
        await runner.complete(backend, ChatRequest.user(row["q"]))
        return None if row["id"] == 5 else {"id": row["id"]}

    with pytest.raises(TypeError, match="process returned NoneType for id '5'"):
        run_job([{"id": i, "q": f"q{i}"} for i in range(10)], buggy, out, cache=None, progress=False)
    assert out.read_text() == '{"id": "previous"}\n'
    assert not partial_path(out).exists()


def test_summary_table_names_rows_cache_requests_retries_failures(start_server, backend_for, tmp_path) -> None:
    server = start_server(faults={"q1": ["503"], "q2": ["500"] * FAST_RETRY.max_attempts})
    rows = [{"id": i, "q": f"q{i}"} for i in range(4)]
    cache = tmp_path / "c.sqlite"
    run_job(
        rows[:1], ask(backend_for(server)), tmp_path / "warm.jsonl", cache=cache, progress=False, print_summary=False
    )
    summary = run_job(
        rows, ask(backend_for(server)), tmp_path / "o.jsonl", cache=cache, progress=False, print_summary=False
    )
    [model] = summary.models
    assert (model["requests"], model["cached_samples"], model["generated_samples"]) == (4, 1, 2)
    assert model["http_attempts"] == 2 + 1 + FAST_RETRY.max_attempts
    assert model["retries"] == {"http_503": 1, "http_500": FAST_RETRY.max_attempts - 1}
    assert model["failures"] == {"http_500": 1}
    text = io.StringIO()
    summary.render(file=text)
    table = text.getvalue()
    for expected in ("model calls", "m1", "cached", "HTTP", "retries", "4 (http_500 3, http_503 1)", "wall time"):
        assert expected in table, expected
    assert "run the same command again" in table
