"""Data jobs against servers that hang or refuse, and runs that share one answer cache."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_helpers import read_jsonl, write_jsonl
from test_filter import records

from vlm_capcurriculum.cli import main
from vlm_capcurriculum.data.client import ModelAccessError, RetryPolicy
from vlm_capcurriculum.data.openai_backend import OpenAIBackend
from vlm_capcurriculum.data.request import ChatRequest
from vlm_capcurriculum.data.runner import map_requests

HERE = Path(__file__).parent


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback port whose connections are accepted (by the kernel's backlog) and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"


def filter_args(tmp_path: Path, url: str, *extra: str) -> list[str]:
    mcq, images = records(tmp_path, 3)
    return ["data", "filter", "--input", str(mcq), "--image-root", str(images), "--output", str(tmp_path / "kept.jsonl"),
            "--base-url", url, "--model", "a", *extra]  # fmt: skip


def test_a_server_that_never_answers_stops_the_job_at_the_stall_timeout(silent_server, tmp_path, capsys) -> None:
    # --timeout 1: each attempt times out and is retried; the bar shows the retries, their reason and the silence.
    args = filter_args(tmp_path, silent_server, "--timeout", "1", "--retry-delay", "0.1", "--stall-timeout", "6")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no model answered for 6 s (--stall-timeout 6): a at http://127.0.0.1:" in err
    assert "retries: timeout" in err and "the same command resumes" in err
    assert "errors=timeout" in err and "idle=5s" in err  # the progress bar, while nothing completed
    assert not (tmp_path / "kept.jsonl").exists()


def test_stall_timeout_is_checked(silent_server, tmp_path, capsys) -> None:
    assert main([*filter_args(tmp_path, silent_server, "--stall-timeout", "-1"), "--no-progress"]) == 2
    assert "--stall-timeout must be >= 0" in capsys.readouterr().err


def test_a_refused_connection_stops_the_run_after_a_few_quick_tries() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    retry = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.02)
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m1", retry=retry, max_concurrency=1)
    with pytest.raises(ModelAccessError, match=r"never answered: ClientConnectorError.*is the server running"):
        map_requests(backend, [ChatRequest.user("q")], progress=False)
    assert backend.stats.attempts == 3  # not max_attempts (8, about 91 s with the default delays)


def test_concurrent_runs_sharing_a_cache_each_replay_exactly_from_it(start_server, tmp_path) -> None:
    """Two processes run the same job on one cache against a server whose answers are random: whichever run
    commits an answer first, both use it, so a third run with the server gone replays both outputs."""
    # Each run takes ~4.5 s (60 questions, 0.15 s each, two at a time), much longer than the gap between the two
    # interpreters' start even on a loaded machine, so the runs overlap (at 0.02 s one could finish first).
    server = start_server(latency=0.15, answer=lambda model, text, images, seed, index: f"{text}:{uuid.uuid4().hex}")
    rows = [{"id": f"r{i}", "question": f"q{i}"} for i in range(60)]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    cache = tmp_path / "shared.sqlite"

    def command(output: str, url: str) -> list[str]:
        return [sys.executable, str(HERE / "job_script.py"), "--input", str(data), "--output", str(tmp_path / output),
                "--cache", str(cache), "--image-root", str(tmp_path), "--base-url", url, "--model", "m",
                "--concurrency", "2"]  # fmt: skip

    runs = [subprocess.Popen(command(f"run{i}.jsonl", server.base_url)) for i in range(2)]
    assert [run.wait(120) for run in runs] == [0, 0]
    assert server.completions > len(rows)  # the runs overlapped: some questions were asked by both
    with socket.socket() as probe:  # replayed with no server at all
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    assert subprocess.run(command("replay.jsonl", dead), timeout=120).returncode == 0
    replay = read_jsonl(tmp_path / "replay.jsonl")
    assert len(replay) == len(rows)
    for i in range(2):
        output = read_jsonl(tmp_path / f"run{i}.jsonl")
        differing = sum(a != b for a, b in zip(output, replay, strict=True))
        assert differing == 0, f"run {i}: {differing} of {len(rows)} rows differ from the cache's replay"
    assert json.loads((tmp_path / "replay.summary.json").read_text())["models"][0]["http_attempts"] == 0


_OPEN_AT_ONCE = """
import sys, time
from vlm_capcurriculum.data.cache import ResponseCache
start = float(sys.argv[2])
while time.time() < start:
    pass
ResponseCache(sys.argv[1]).close()
"""


def test_processes_opening_one_new_cache_at_the_same_instant_all_succeed(tmp_path) -> None:
    """Turning a new file into WAL takes an exclusive lock that SQLite does not wait for: every process that opens
    the shared cache in the same instant must still get it (one of CI's two parallel jobs once died here)."""
    for attempt in range(3):
        path = tmp_path / f"new{attempt}.sqlite"
        start = time.time() + 1.5  # the interpreters start first, then all open at once
        procs = [subprocess.Popen([sys.executable, "-c", _OPEN_AT_ONCE, str(path), str(start)], stderr=subprocess.PIPE)
                 for _ in range(6)]  # fmt: skip
        results = [(p.wait(120), p.stderr.read().decode()) for p in procs if p.stderr is not None]
        assert [rc for rc, _ in results] == [0] * 6, [err for rc, err in results if rc]
