"""vLLM's offline engine as a backend (``--engine vllm``), for a GPU box without a server.

Requests that arrive while the engine is busy are gathered into one ``LLM.chat`` call (vLLM schedules a batch far
better than one prompt at a time), run in a worker thread so the event loop keeps feeding the cache and the output.

UNVERIFIED: vLLM cannot be installed where this is developed (no GPU), so this module has never run against a real
engine; it is written against ``vllm.LLM.chat(conversations, sampling_params: list, use_tqdm=...)`` and
``RequestOutput.outputs[i].text/.finish_reason/.token_ids``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from vlm_capcurriculum.data.client import BackendStats, RequestFailed, Sample
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams

MAX_BATCH = 512


@dataclass
class _Pending:
    messages: list[dict[str, Any]]
    params: Any
    future: asyncio.Future[list[Sample]]


class VLLMBackend:
    """``vllm.LLM(model)``, imported when first needed; ``extra`` sampling fields go to ``vllm.SamplingParams``."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.stats = BackendStats()
        self._llm: Any = None
        self._queue: list[_Pending] = []
        self._worker: asyncio.Task[None] | None = None

    def _engine(self) -> Any:
        if self._llm is None:
            try:
                import vllm
            except ImportError as err:
                raise ImportError("VLLMBackend needs the `vllm` package (pip install vllm on a GPU machine)") from err
            self._llm = vllm.LLM(model=self.model)
        return self._llm

    async def generate(self, request: ChatRequest, params: SamplingParams, n: int, seed: int | None) -> list[Sample]:
        messages = request.to_openai()  # InputError for an unreadable image reaches the job runner
        self._engine()  # loaded on the first request; says what to install when vllm is missing
        import vllm

        sampling = vllm.SamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=seed,
            **dict(params.extra),
        )
        future: asyncio.Future[list[Sample]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(messages, sampling, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(0)  # let every request created in this tick join the batch
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            self.stats.started()
            try:
                outputs = await asyncio.to_thread(
                    self._engine().chat, [p.messages for p in batch], [p.params for p in batch], use_tqdm=False
                )
            except Exception as err:  # one bad prompt fails the call: report it on every request of the batch
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(RequestFailed("engine_error", f"{type(err).__name__}: {err}"))
                continue
            finally:
                self.stats.finished()
            for pending, output in zip(batch, outputs, strict=True):
                samples = [Sample(c.text, c.finish_reason, len(c.token_ids)) for c in output.outputs]
                self.stats.prompt_tokens += len(output.prompt_token_ids or ())
                self.stats.completion_tokens += sum(sample.completion_tokens or 0 for sample in samples)
                if not pending.future.done():
                    pending.future.set_result(samples)

    async def aclose(self) -> None:
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
