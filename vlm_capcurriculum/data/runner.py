"""Cached model calls: the one place that decides what is asked of a backend and what comes from disk.

Samples are exchangeable draws keyed by index: :meth:`Runner.complete` asks the backend only for the samples the
cache lacks; with a seed, the request that first produces sample ``i`` is sent with ``seed + i``, so a server that
ignores ``n`` (``transformers serve``) still gets distinct, reproducible seeds. Answers are committed once per
event-loop turn (:meth:`Runner.flush`; a commit per answer cost a sixth of the client's CPU at 64 concurrent
requests), and ``complete`` returns what the cache then holds: when runs sharing a cache ask the same request at
once, the first commit wins for all, so each output is exactly what a later run replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter, deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from vlm_capcurriculum.data.cache import ResponseCache
from vlm_capcurriculum.data.client import Backend, RequestFailed, Sample, StalledError
from vlm_capcurriculum.data.progress import ProgressBar, reasons
from vlm_capcurriculum.data.request import ChatRequest, InputError, SamplingParams, blob_key, key_blob

T = TypeVar("T")
WINDOW = 1024  # requests or rows pending at once: memory stays bounded however long the input


@dataclass(frozen=True)
class Completion:
    """The ``n`` samples of one request, in index order."""

    samples: tuple[Sample, ...]

    @property
    def text(self) -> str:  # the answer, for ``n == 1``
        return self.samples[0].text

    @property
    def texts(self) -> list[str]:
        return [sample.text for sample in self.samples]


@dataclass
class ModelCounters:
    """What the runner did for one backend (the backend's own stats count HTTP attempts)."""

    requests: int = 0
    cached_samples: int = 0
    generated_samples: int = 0
    failed: Counter[str] = field(default_factory=Counter)


class Runner:
    """Answers requests from the cache or any number of backends within one event loop, and counts what it did
    per backend. ``stall_timeout`` (seconds, ``None``: never): how long :meth:`in_order` waits without any answer."""

    def __init__(self, cache: str | os.PathLike[str] | None = None, *, stall_timeout: float | None = None) -> None:
        if stall_timeout is not None and stall_timeout <= 0:
            raise ValueError(f"stall_timeout must be > 0 (or None), got {stall_timeout}")
        self.cache = None if cache is None else ResponseCache(cache)
        self.stall_timeout = stall_timeout
        self.backends: dict[int, Backend] = {}
        self.counters: dict[int, ModelCounters] = {}
        self.last_answer = time.monotonic()  # from a backend or the cache
        self._locks: dict[str, list[Any]] = {}
        # answers not yet committed: key -> (model, blob, {index: sample}, future of the committed samples)
        self._unwritten: dict[str, tuple[str, str, dict[int, Sample], asyncio.Future[dict[int, Sample]]]] = {}
        self._flush_handle: asyncio.Handle | None = None

    async def complete(
        self, backend: Backend, request: ChatRequest, params: SamplingParams | None = None
    ) -> Completion:
        """The ``params.n`` samples of ``request``. Raises :class:`RequestFailed` when the backend gives up on it
        (samples that did arrive stay cached), :class:`InputError` for an unreadable image."""
        params = params or SamplingParams()
        if id(backend) not in self.backends:
            self.backends[id(backend)] = backend
            self.counters[id(backend)] = ModelCounters()
        counters = self.counters[id(backend)]
        counters.requests += 1
        blob = key_blob(backend.model, request, params)
        key = blob_key(blob)
        async with self._one_at_a_time(key):
            have = self.cache.get(key, params.n) if self.cache is not None else {}
            counters.cached_samples += len(have)
            if have:
                self.last_answer = time.monotonic()
            missing = [i for i in range(params.n) if i not in have]
            while missing:
                seed = None if params.seed is None else params.seed + missing[0]
                try:
                    samples = await backend.generate(request, params, len(missing), seed)
                except RequestFailed as err:
                    counters.failed[err.reason] += 1
                    raise
                if not samples:
                    counters.failed["no_samples"] += 1
                    raise RequestFailed("no_samples", f"{backend.model} returned no samples")
                self.last_answer = time.monotonic()
                arrived = list(zip(missing, samples, strict=False))  # extra samples are ignored
                if self.cache is not None:
                    # Queued for the next group commit (the key's lock means none is queued yet); then what the
                    # cache holds for these indexes: another run sharing the cache may have answered first.
                    loop = asyncio.get_running_loop()
                    committed: asyncio.Future[dict[int, Sample]] = loop.create_future()
                    self._unwritten[key] = (backend.model, blob, dict(arrived), committed)
                    self._flush_handle = self._flush_handle or loop.call_soon(self.flush)
                    arrived = list((await committed).items())
                have.update(arrived)
                counters.generated_samples += min(len(samples), len(missing))
                missing = missing[len(samples) :]
            return Completion(tuple(have[i] for i in range(params.n)))

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, key: str) -> AsyncIterator[None]:
        """Identical requests in flight at once are made once: the second waits, then reads the cache."""
        entry = self._locks.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[key]

    def flush(self) -> None:
        """Commit every answer received so far (one transaction) and hand each waiting request what the cache
        now holds for it."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._unwritten or self.cache is None:
            return
        unwritten, self._unwritten = self._unwritten, {}
        entries = [(key, model, blob, list(samples.items())) for key, (model, blob, samples, _) in unwritten.items()]
        try:
            stored = self.cache.store_many(entries)
        except BaseException as err:
            for *_, future in unwritten.values():
                if not future.done():
                    future.set_exception(err)
                    future.exception()  # retrieved here: the error is raised to the caller of flush too
            raise
        for key, (*_, future) in unwritten.items():
            if not future.done():
                future.set_result(stored[key])

    async def watch(self, bar: ProgressBar) -> NoReturn:
        """Refresh ``bar`` every second; raise :class:`StalledError` once no answer arrived for ``stall_timeout``
        seconds (a server that never answers would otherwise hold a job for attempts x timeout per request)."""
        self.last_answer = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            idle = time.monotonic() - self.last_answer
            bar.refresh(idle)
            if self.stall_timeout is not None and idle >= self.stall_timeout:
                waiting = [
                    f"{backend.model} at {getattr(backend, 'base_url', 'its engine')} "
                    f"({backend.stats.in_flight} in flight"
                    + (f", retries: {reasons(backend.stats.retries)}" if backend.stats.retries else "")
                    + ")"
                    for backend in self.backends.values()
                ]
                raise StalledError(
                    f"no model answered for {idle:.0f} s (--stall-timeout {self.stall_timeout:g}): "
                    + ("; ".join(waiting) or "no request was sent")
                    + ". Stopped; the answers received so far are cached, so the same command resumes once the "
                    "server answers"
                )

    async def in_order(self, work: Iterable[Awaitable[T]], bar: ProgressBar, window: int) -> AsyncGenerator[T, None]:
        """The results of ``work`` in order, at most ``window`` pending at once. The first error of any item, or a
        stall (:meth:`watch`), cancels the rest and is raised."""
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def stop_on_error(task: asyncio.Future[Any]) -> None:
            if not task.cancelled() and task.exception() is not None and not failed.done():
                failed.set_exception(task.exception())  # type: ignore[arg-type]

        watchdog = asyncio.ensure_future(self.watch(bar))
        watchdog.add_done_callback(stop_on_error)
        pending: deque[asyncio.Future[T]] = deque()

        async def head() -> T:
            await asyncio.wait([pending[0], failed], return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                failed.result()
            return pending.popleft().result()

        try:
            for item in work:
                pending.append(asyncio.ensure_future(item))
                pending[-1].add_done_callback(stop_on_error)
                while len(pending) >= window or (pending and pending[0].done()):
                    yield await head()
            while pending:
                yield await head()
        finally:
            watchdog.cancel()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if failed.done():
                failed.exception()  # retrieved: it is being raised, or superseded by another error

    async def aclose(self) -> None:
        """Close every backend this runner used (their connection pools belong to the current event loop), and
        its cache (after committing the answers not yet written)."""
        self.flush()
        for backend in self.backends.values():
            await backend.aclose()
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def settled(work: Awaitable[T], bar: ProgressBar) -> T | RequestFailed:
    """``work``'s result, or the :class:`RequestFailed` it raised (an :class:`InputError` such as an unreadable
    image as ``bad_input``): that item fails, the others go on. Advances ``bar`` (not for an item cancelled)."""
    outcome: T | RequestFailed
    try:
        outcome = await work
    except RequestFailed as err:
        outcome = err
    except InputError as err:
        outcome = RequestFailed("bad_input", str(err))
    bar.advance()
    return outcome


def map_requests(
    backend: Backend,
    requests: Sequence[ChatRequest],
    params: SamplingParams | None = None,
    *,
    cache: str | os.PathLike[str] | None = None,
    progress: bool | str = True,
) -> list[Completion | RequestFailed]:
    """Every request's completion from synchronous code, in order, cached in ``cache``; a request the backend gave
    up on is its :class:`RequestFailed` in place. ``progress`` is a bar description, or ``False``."""

    async def main() -> list[Completion | RequestFailed]:
        async with Runner(cache) as runner:
            desc = progress if isinstance(progress, str) else backend.model
            bar = ProgressBar(len(requests), runner, desc=desc, enabled=bool(progress))

            try:
                async with contextlib.aclosing(
                    runner.in_order((settled(runner.complete(backend, r, params), bar) for r in requests), bar, WINDOW)
                ) as outcomes:
                    return [outcome async for outcome in outcomes]
            finally:
                bar.close()

    return asyncio.run(main())
