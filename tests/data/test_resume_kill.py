"""Kill-and-resume: a job SIGKILLed mid-run and started again with the same command ends with exactly the output
of an uninterrupted run (same rows, same order, no duplicate, none lost), and redoes only the unfinished work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_helpers import cached_samples
from testkit import REPO

from vlm_capcurriculum.data.io import partial_path

HERE = Path(__file__).parent
ROWS = 150
MODELS = ("small", "large")


def command(server_url: str, work: Path, image_root: Path) -> list[str]:
    args = [sys.executable, str(HERE / "job_script.py"), "--input", str(work.parent / "input.jsonl")]
    args += ["--output", str(work / "out.jsonl"), "--cache", str(work / "cache.sqlite")]
    args += ["--image-root", str(image_root), "--base-url", server_url, "--concurrency", "4"]
    for model in MODELS:
        args += ["--model", model]
    return args


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)


def test_sigkilled_job_resumes_to_the_uninterrupted_output(start_server, images, tmp_path) -> None:
    server = start_server(latency=0.03)
    image_root = images["red"].parent
    names = ["red.png", "green.png", "sub/again.png", None]
    rows = [
        {"id": f"row-{i:03d}", "question": f"question {i} <image>" if names[i % 4] else f"question {i}"}
        | ({"image": names[i % 4]} if names[i % 4] else {})
        | ({"keep": False} if i % 9 == 4 else {})
        for i in range(ROWS)
    ]
    (tmp_path / "input.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    reference.mkdir()
    resumed.mkdir()
    total = ROWS * len(MODELS)

    done = run(command(server.base_url, reference, image_root))
    assert done.returncode == 0, done.stderr
    assert server.completions == total

    server.reset_counts()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    victim = subprocess.Popen(
        command(server.base_url, resumed, image_root), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while server.completions < total // 3 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    answered_before_kill = server.completions
    assert total // 3 <= answered_before_kill < total
    assert not (resumed / "out.jsonl").exists()  # nothing published by a killed run
    cached = cached_samples(resumed / "cache.sqlite")
    # At most the requests in flight at the kill (4 per model) were answered but not yet stored.
    assert answered_before_kill - 2 * 4 <= cached <= answered_before_kill

    server.reset_counts()
    again = run(command(server.base_url, resumed, image_root))
    assert again.returncode == 0, again.stderr
    assert server.completions == total - cached  # only the unfinished work
    assert not partial_path(resumed / "out.jsonl").exists()

    for name in ("out.jsonl", "out.rejects.jsonl"):
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name
    written = [json.loads(line)["id"] for line in (resumed / "out.jsonl").read_text().splitlines()]
    rejected = [json.loads(line)["id"] for line in (resumed / "out.rejects.jsonl").read_text().splitlines()]
    assert len(written) == len(set(written)) and not set(written) & set(rejected)
    assert sorted(written + rejected) == [row["id"] for row in rows]
    summary = json.loads((resumed / "out.summary.json").read_text())
    assert sum(m["cached_samples"] for m in summary["models"]) == cached

    server.reset_counts()  # and once more: everything from the cache
    assert run(command(server.base_url, resumed, image_root)).returncode == 0
    assert server.completions == 0
    assert (resumed / "out.jsonl").read_bytes() == (reference / "out.jsonl").read_bytes()
