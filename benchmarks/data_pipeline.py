"""Throughput of ``vlmcc data filter`` against a loopback server with a fixed per-request latency.

The job is the real filter pipeline (:func:`vlm_capcurriculum.data.filter.make_filter` over records read with
``record_rows``): per question, the image-only and the caption-only request through the whole stack, ``run_job``
-> ``Runner`` (cache lookups and writes) -> ``OpenAIBackend`` (HTTP, retries, concurrency) -> grading -> ordered
atomic output. With latency L and concurrency C, no client can exceed C / L requests per second; the table
reports the fraction of that ideal reached. Two baselines, measured in the same run: a bare ``aiohttp`` loop
posting the same bodies pre-encoded (no cache, no job, no image reading: what this machine allows), and a plain
client that encodes each body when it is sent (reads the image, base64, JSON: the work no client can skip).
``job / plain`` is the cost of the cache, the job and the grading. The last column is the same job re-run
entirely from the cache (what a restart after a crash costs).

The server is ``tests/data/fault_server.py`` run in its own process (so it does not share the client's GIL),
answering every request with the letter ``B`` (a wrong option: every question is graded and rejected).

    python benchmarks/data_pipeline.py [--latency 0.05] [--concurrency 1 4 16 64 256] [--seconds 2]
    python benchmarks/data_pipeline.py --compare-clients     # why the backend uses aiohttp, not httpx
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vlm_capcurriculum.data.jobs import run_job  # noqa: E402
from vlm_capcurriculum.data.openai_backend import OpenAIBackend  # noqa: E402
from vlm_capcurriculum.data.request import ChatRequest, ImageInput  # noqa: E402


class ServerProcess:
    def __init__(self, latency: float) -> None:
        script = REPO / "tests" / "data" / "fault_server.py"
        self.process = subprocess.Popen(
            # a filter model's answer: one letter (the echoing default would make grading measure prompt length)
            [sys.executable, str(script), "--latency", str(latency), "--answer", "B"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/v1"

    def command(self, line: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


def noise_png(kilobytes: int, seed: int) -> bytes:
    from PIL import Image

    side = max(8, int(math.sqrt(kilobytes * 1024 / 3)))
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (side, side), bytes(rng.getrandbits(8) for _ in range(side * side * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


OPTIONS = {"A": "a", "B": "b", "C": "c", "D": "d"}


def filter_records(count: int, image_dir: Path, image_kb: int, distinct_images: int = 16) -> Path:
    """``count`` perception MCQ records (our schema, with captions) on disk, over ``distinct_images`` noise PNGs."""
    names = []
    for i in range(distinct_images):
        (image_dir / f"img{i}.png").write_bytes(noise_png(image_kb, i))
        names.append(f"img{i}.png")
    path = image_dir / "mcq.jsonl"
    with path.open("w") as handle:
        for i in range(count):
            record = {
                "id": f"q{i}",
                "capability": "perception",
                "problem": f"<image>Question {i}: which object is left of the red cup?\nOptions:\n"
                + "\n".join(f"{k}. {v}" for k, v in OPTIONS.items()),
                "images": [names[i % distinct_images]],
                "answer": "A",
                "choices": OPTIONS,
                "caption": f"Caption {i}: a red cup stands right of a blue box on a wooden table. " * 4,
            }
            handle.write(json.dumps(record) + "\n")
    return path


def requests(records: Path, image_root: Path) -> list[ChatRequest]:
    """The filter's own requests (same prompts, same images)."""
    from vlm_capcurriculum.data.filter import caption_only_text, image_only_text
    from vlm_capcurriculum.data.prompting import PromptTemplate
    from vlm_capcurriculum.schema import read_records

    image_prompt = PromptTemplate.packaged("filter_image.txt")
    caption_prompt = PromptTemplate.packaged("filter_caption.txt")
    out = []
    for record in read_records(records, image_root=image_root).records:
        images = [ImageInput(image_root / name) for name in record.images]
        out.append(ChatRequest.user(image_only_text(record, image_prompt), images))
        out.append(ChatRequest.user(caption_only_text(record, record.extra["caption"], caption_prompt)))
    return out


def encode(request: ChatRequest) -> bytes:
    """A request body the plain way: read the images, base64 them, ``json.dumps`` the whole body."""
    body = {"model": "bench", "messages": request.to_openai(), "temperature": 0.0, "max_tokens": 16}
    return json.dumps(body).encode()


async def bare_client(url: str, payloads: list[Any], concurrency: int) -> float:
    """Requests per second of the plainest client: a semaphore, a session, post and parse. ``payloads`` are
    encoded bodies (the ceiling), or requests each encoded when its slot is free (a plain client that reads and
    encodes its images, as any client must)."""
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def one(payload: Any) -> None:
            async with slots:
                data = payload if isinstance(payload, bytes) else encode(payload)
                async with session.post(url, data=data, headers=headers) as response:
                    json.loads(await response.read())

        started = time.perf_counter()
        await asyncio.gather(*(one(p) for p in payloads))
        return len(payloads) / (time.perf_counter() - started)


async def bare_httpx(url: str, payloads: list[bytes], concurrency: int) -> float:
    """The same plain loop on ``httpx`` (the client this backend does not use: see openai_backend.py)."""
    import httpx

    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def one(payload: bytes) -> None:
            async with slots:
                response = await client.post(url, content=payload, headers={"content-type": "application/json"})
                json.loads(response.content)

        started = time.perf_counter()
        await asyncio.gather(*(one(p) for p in payloads))
        return len(payloads) / (time.perf_counter() - started)


def compare_clients(server: ServerProcess, latency: float, levels: list[int], seconds: float) -> None:
    url = f"{server.base_url}/chat/completions"
    print(f"\nbare clients, text-only bodies, server latency {latency * 1000:.0f} ms\n")
    print("| concurrency | ideal req/s | httpx req/s | aiohttp req/s | aiohttp / httpx |")
    print("|---:|---:|---:|---:|---:|")
    for concurrency in levels:
        count = min(3000, max(20, math.ceil(concurrency / latency * seconds)))
        payloads = [
            json.dumps({"model": "bench", "messages": [{"role": "user", "content": f"q{i}"}]}).encode()
            for i in range(count)
        ]
        slow = asyncio.run(bare_httpx(url, payloads, concurrency))
        fast = asyncio.run(bare_client(url, payloads, concurrency))
        print(f"| {concurrency} | {concurrency / latency:.0f} | {slow:.0f} | {fast:.0f} | {fast / slow:.1f} |")


def run_filter(records: Path, image_root: Path, work: Path, base_url: str, concurrency: int) -> tuple[Any, Any]:
    from vlm_capcurriculum.data.filter import FilterReport, make_filter
    from vlm_capcurriculum.data.inputs import record_rows

    backend = OpenAIBackend(base_url, "bench", max_concurrency=concurrency)
    report = FilterReport.empty(["bench"])
    rows = record_rows(records, image_root=image_root)
    process = make_filter([backend], report, image_root=image_root)
    options = {"cache": work / "cache.sqlite", "progress": False, "print_summary": False}
    return run_job(rows, process, work / "kept.jsonl", **options), backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.05, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--seconds", type=float, default=2.0, help="target duration of each uncached run")
    parser.add_argument("--image-kb", type=int, default=100, help="size of each (noise PNG) image")
    parser.add_argument("--max-rows", type=int, default=2000)
    parser.add_argument("--compare-clients", action="store_true", help="only compare bare httpx and aiohttp loops")
    args = parser.parse_args()

    server = ServerProcess(args.latency)
    if args.compare_clients:
        try:
            compare_clients(server, args.latency, args.concurrency, args.seconds)
        finally:
            server.close()
        return
    results = []
    try:
        for concurrency in args.concurrency:
            ideal = concurrency / args.latency
            rows_count = min(args.max_rows, max(20, math.ceil(ideal * args.seconds / 2)))
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                records = filter_records(rows_count, work, args.image_kb)
                url = f"{server.base_url}/chat/completions"
                asked = requests(records, work)
                bare = asyncio.run(bare_client(url, [encode(r) for r in asked], concurrency))
                plain = asyncio.run(bare_client(url, asked, concurrency))
                server.command("reset")
                started = time.perf_counter()
                summary, _ = run_filter(records, work, work, server.base_url, concurrency)
                rate = 2 * rows_count / (time.perf_counter() - started)
                stats = server.command("stats")
                assert summary.ok and stats["completions"] == 2 * rows_count, (summary.failed, stats)
                assert summary.rejected["caption_wrong"] == rows_count  # every row graded ("B" is wrong)
                started = time.perf_counter()
                _, replay_backend = run_filter(records, work, work, server.base_url, concurrency)
                replay_wall = time.perf_counter() - started
                assert replay_backend.stats.attempts == 0
            peak = stats["peak_in_flight"]
            results.append((concurrency, 2 * rows_count, ideal, bare, plain, rate, peak, rows_count / replay_wall))
            print(f"concurrency {concurrency}: {rate:.0f} req/s (bare {bare:.0f}, plain {plain:.0f})", file=sys.stderr)
    finally:
        server.close()

    print(
        f"\nvlmcc data filter (1 model, 2 requests/row: image-only + caption-only), server latency {args.latency * 1000:.0f} ms, "
        f"{args.image_kb} KB images, sqlite cache on\n"
    )
    header = (
        "concurrency",
        "requests",
        "ideal req/s",
        "bare, pre-encoded (of ideal)",
        "plain client (of ideal)",
        "filter job (of ideal)",
        "job / plain",
        "job / bare",
        "server peak",
        "cached re-run rows/s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---:" for _ in header) + "|")
    for c, n, ideal, bare, plain, rate, peak, replay in results:
        print(
            f"| {c} | {n} | {ideal:.0f} | {bare:.0f} ({bare / ideal:.0%}) | {plain:.0f} ({plain / ideal:.0%}) "
            f"| {rate:.0f} ({rate / ideal:.0%}) | {rate / plain:.2f} | {rate / bare:.2f} | {peak} | {replay:.0f} |"
        )


if __name__ == "__main__":
    main()
