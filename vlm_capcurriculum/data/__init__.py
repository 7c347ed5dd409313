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
from vlm_capcurriculum.data.request import ChatRequest, ImageInput, InputError, Message, SamplingParams, request_key
from vlm_capcurriculum.data.runner import Completion, Runner, map_requests
from vlm_capcurriculum.data.vllm_backend import VLLMBackend

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
