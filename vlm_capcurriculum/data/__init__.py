"""Data pipelines' foundation: model access, the answer cache, and resumable jobs.

A pipeline step is a few lines on top of this::

    backend = OpenAIBackend("http://localhost:8000/v1", "Qwen/Qwen2.5-VL-7B-Instruct", max_concurrency=64)

    async def process(row, runner):
        answer = await runner.complete(backend, ChatRequest.user(row["problem"], [root / p for p in row["images"]]))
        return {**row, "prediction": answer.text}

    summary = run_job(rows, process, "out.jsonl", cache="answers.sqlite", rejects="out.rejects.jsonl")

Every answer is cached by (model, messages with image hashes, sampling params, sample index); a killed run
re-run with the same command replays finished rows from the cache and writes the output once, atomically.

The pipelines built on it (``vlmcc data ...``, ``data_recipes/README.md``): :mod:`.generate` (captions ->
perception MCQs, corpora in :mod:`.captions`), :mod:`.filter` (image-wrong and caption-right for every model),
:mod:`.passk` (pass rate of K samples), :mod:`.convert` (source datasets -> records), :mod:`.caption_sft`; their
inputs and bad rows in :mod:`.inputs`, prompt templates in :mod:`.prompting` (defaults in ``prompts/``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real names for type checkers and IDEs
    from vlm_capcurriculum.data.cache import CacheError, ResponseCache
    from vlm_capcurriculum.data.client import (
        Backend,
        BackendStats,
        ModelAccessError,
        RequestFailed,
        RetryPolicy,
        Sample,
        StalledError,
    )
    from vlm_capcurriculum.data.io import AtomicJsonlWriter, read_jsonl
    from vlm_capcurriculum.data.jobs import Reject, arun_job, run_job
    from vlm_capcurriculum.data.openai_backend import OpenAIBackend
    from vlm_capcurriculum.data.progress import RunSummary
    from vlm_capcurriculum.data.request import (
        ChatRequest,
        ImageInput,
        InputError,
        Message,
        SamplingParams,
        request_key,
    )
    from vlm_capcurriculum.data.runner import Completion, Runner, map_requests
    from vlm_capcurriculum.data.vllm_backend import VLLMBackend

# Imported on first use (PEP 562), so that `vlm_capcurriculum.data.convert` and the other pipelines that need no
# model server work without the `data` extra's HTTP client (aiohttp is imported only with OpenAIBackend).
_EXPORTS: dict[str, str] = {
    "AtomicJsonlWriter": "vlm_capcurriculum.data.io",
    "Backend": "vlm_capcurriculum.data.client",
    "BackendStats": "vlm_capcurriculum.data.client",
    "CacheError": "vlm_capcurriculum.data.cache",
    "ChatRequest": "vlm_capcurriculum.data.request",
    "Completion": "vlm_capcurriculum.data.runner",
    "ImageInput": "vlm_capcurriculum.data.request",
    "InputError": "vlm_capcurriculum.data.request",
    "Message": "vlm_capcurriculum.data.request",
    "ModelAccessError": "vlm_capcurriculum.data.client",
    "OpenAIBackend": "vlm_capcurriculum.data.openai_backend",
    "Reject": "vlm_capcurriculum.data.jobs",
    "RequestFailed": "vlm_capcurriculum.data.client",
    "ResponseCache": "vlm_capcurriculum.data.cache",
    "RetryPolicy": "vlm_capcurriculum.data.client",
    "RunSummary": "vlm_capcurriculum.data.progress",
    "Runner": "vlm_capcurriculum.data.runner",
    "Sample": "vlm_capcurriculum.data.client",
    "StalledError": "vlm_capcurriculum.data.client",
    "SamplingParams": "vlm_capcurriculum.data.request",
    "VLLMBackend": "vlm_capcurriculum.data.vllm_backend",
    "arun_job": "vlm_capcurriculum.data.jobs",
    "map_requests": "vlm_capcurriculum.data.runner",
    "read_jsonl": "vlm_capcurriculum.data.io",
    "request_key": "vlm_capcurriculum.data.request",
    "run_job": "vlm_capcurriculum.data.jobs",
}

__all__ = [
    "AtomicJsonlWriter",
    "Backend",
    "BackendStats",
    "CacheError",
    "ChatRequest",
    "Completion",
    "ImageInput",
    "InputError",
    "Message",
    "ModelAccessError",
    "OpenAIBackend",
    "Reject",
    "RequestFailed",
    "ResponseCache",
    "RetryPolicy",
    "RunSummary",
    "Runner",
    "Sample",
    "SamplingParams",
    "StalledError",
    "VLLMBackend",
    "arun_job",
    "map_requests",
    "read_jsonl",
    "request_key",
    "run_job",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
