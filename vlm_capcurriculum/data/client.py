"""The model-access interface every backend implements, and what it reports. A backend owns transport (concurrency,
timeouts, retries); the :class:`~vlm_capcurriculum.data.runner.Runner` above it owns caching and bookkeeping.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from vlm_capcurriculum.data.request import ChatRequest, SamplingParams


@dataclass(frozen=True)
class Sample:
    text: str
    finish_reason: str | None = None
    completion_tokens: int | None = None  # as the server counted it; None when unknown or shared by several choices


class RequestFailed(Exception):
    """One request could not be answered (retries exhausted, or a non-retryable 4xx). Recorded against its row;
    never cached, so the next run tries it again."""

    def __init__(self, reason: str, message: str, *, attempts: int = 1) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.attempts = attempts

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class ModelAccessError(RuntimeError):
    """Nothing can succeed (bad API key, unknown model, server never reachable): the run stops at once."""


class StalledError(ModelAccessError):
    """No model answered for the run's stall timeout: the server hangs (accepts requests and never answers) or
    is overloaded beyond use. The run stops; every answer received so far is in the cache."""


@dataclass
class BackendStats:
    """Counters a backend keeps while it runs (requests given up on are counted by the runner): ``attempts`` are
    HTTP requests sent (or engine calls), retries included."""

    attempts: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def started(self) -> None:
        self.attempts += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1


class Backend(Protocol):
    """A model behind some transport; ``model`` is the served name, also the model in cache keys."""

    model: str
    stats: BackendStats

    async def generate(self, request: ChatRequest, params: SamplingParams, n: int, seed: int | None) -> list[Sample]:
        """Up to ``n`` samples (at least one; the runner asks again for the rest), seeded with ``seed``. Raises
        :class:`RequestFailed` when this request cannot be answered, :class:`ModelAccessError` when none can."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """Transient failures (429, 5xx, connection errors, timeouts) get ``max_attempts`` tries in all; a malformed or
    truncated 200 body gets ``malformed_attempts`` (such bodies rarely heal, but a proxy hiccup does). Delays double
    up to ``max_delay`` with "equal jitter" (half fixed, half random), so concurrent clients spread out but every
    wait still grows; a ``Retry-After`` header (up to ``max_retry_after`` s) replaces the backoff."""

    max_attempts: int = 8
    malformed_attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 60.0
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.malformed_attempts < 1:
            raise ValueError("max_attempts and malformed_attempts must be >= 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 = the first)."""
        if retry_after is not None:
            wait = min(max(retry_after, 0.0), self.max_retry_after)
            return wait + rng.uniform(0, 0.1 * wait)
        ceiling = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)
