"""Kill-and-resume of ``vlmcc data filter``: SIGKILLed mid-run and run again with the same command, it publishes
exactly what an uninterrupted run publishes (same rows, order, rejects and report), asking only for the answers
it did not have."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from data_helpers import cached_samples
from pipeline_helpers import docci_corpus, read_jsonl, write_jsonl
from test_filter import OPTIONS, SCRIPT
from testkit import REPO

ROWS = 120
CONCURRENCY = 4


def scripted(model: str, text: str, images: list[str], seed: int | None, index: int) -> str:
    number = int(text.split("photo ")[1].split("?")[0])
    image_answer, caption_answer = SCRIPT[number % len(SCRIPT)][model]
    return image_answer if images else caption_answer


def command(url: str, mcq: Path, images: Path, out: Path) -> list[str]:
    args = [sys.executable, "-m", "vlm_capcurriculum", "data", "filter", "--input", str(mcq), "--image-root"]
    args += [str(images), "--base-url", url, "--model", "a", "--model", "b", "--output", str(out)]
    return [*args, "--concurrency", str(CONCURRENCY), "--no-progress"]


def test_sigkilled_filter_resumes_to_the_uninterrupted_output(start_server, tmp_path) -> None:
    captions, images = docci_corpus(tmp_path, 6)
    names = [row["image_file"] for row in read_jsonl(captions)]
    rows = [
        {
            "id": f"q{i:03d}",
            "capability": "perception",
            "problem": f"<image>What stands left of the box in photo {i}?\nOptions:\n"
            + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items()),
            "images": [names[i % len(names)]],
            "answer": "A",
            "answer_type": "choice",
            "choices": OPTIONS,
            "caption": f"Photo {i}: a mug left of a box.",
        }
        for i in range(ROWS)
    ]
    mcq = write_jsonl(tmp_path / "mcq.jsonl", rows)
    server = start_server(latency=0.02, answer=scripted)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    reference.mkdir()
    resumed.mkdir()
    total = ROWS * 2 * 2  # two models, two conditions

    done = subprocess.run(command(server.base_url, mcq, images, reference / "kept.jsonl"), env=env, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert server.completions == total

    server.reset_counts()
    victim = subprocess.Popen(
        command(server.base_url, mcq, images, resumed / "kept.jsonl"), env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while server.completions < total // 3 and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL, "the filter finished before it could be killed"
    answered = server.completions
    assert total // 3 <= answered < total
    assert not (resumed / "kept.jsonl").exists() and not (resumed / "kept.report.json").exists()
    cached = cached_samples(resumed / "kept.cache.sqlite")
    # Lost at most: the answers in flight (4 per model) and those of the event-loop turn being committed.
    assert answered - 4 * CONCURRENCY <= cached <= answered

    server.reset_counts()
    again = subprocess.run(command(server.base_url, mcq, images, resumed / "kept.jsonl"), env=env, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert server.completions == total - cached  # only the missing answers
    for name in ("kept.jsonl", "kept.rejects.jsonl", "kept.report.json"):
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name
    kept = [row["id"] for row in read_jsonl(resumed / "kept.jsonl")]
    rejected = [row["id"] for row in read_jsonl(resumed / "kept.rejects.jsonl")]
    assert len(kept) == len(set(kept)) and not set(kept) & set(rejected)
    assert sorted(kept + rejected) == [row["id"] for row in rows]
    assert json.loads((resumed / "kept.report.json").read_text())["kept"] == len(kept) == 2 * ROWS // len(SCRIPT)
