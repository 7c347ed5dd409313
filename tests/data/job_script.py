"""A small map job driven from the command line: the subprocess the kill-and-resume test SIGKILLs.

For each row, asks every ``--model`` the row's question (with its image, when it has one) and writes the row
with the answers; rows marked ``"keep": false`` are rejected. It is the shape of the ``filter`` pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from vlm_capcurriculum.data.client import RetryPolicy
from vlm_capcurriculum.data.io import read_jsonl
from vlm_capcurriculum.data.jobs import Reject, run_job
from vlm_capcurriculum.data.openai_backend import OpenAIBackend
from vlm_capcurriculum.data.request import ChatRequest
from vlm_capcurriculum.data.runner import Runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--image-root", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", action="append", required=True)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)

    retry = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
    backends = [OpenAIBackend(args.base_url, m, max_concurrency=args.concurrency, retry=retry) for m in args.model]
    root = Path(args.image_root)

    async def process(row: dict[str, Any], runner: Runner) -> dict[str, Any] | Reject:
        images = [root / row["image"]] if row.get("image") else []
        request = ChatRequest.user(row["question"], images)
        answers = await asyncio.gather(*(runner.complete(backend, request) for backend in backends))
        if row.get("keep") is False:
            return Reject("marked", {"id": row["id"], "answers": [a.text for a in answers]})
        return {"id": row["id"], "answers": {b.model: a.text for b, a in zip(backends, answers, strict=True)}}

    rows = [row for _, row in read_jsonl(args.input)]
    summary = run_job(
        rows,
        process,
        args.output,
        cache=args.cache,
        rejects=Path(args.output).with_suffix(".rejects.jsonl"),
        summary=Path(args.output).with_suffix(".summary.json"),
        progress=False,
    )
    return 0 if summary.ok else 3


if __name__ == "__main__":
    sys.exit(main())
