"""Any OpenAI-compatible chat-completions server: vLLM ``serve``, SGLang, LMDeploy, ``transformers serve``, hosted
APIs.

Written on ``aiohttp`` because the retry loop is the point of this module (which failures retry, how long to wait,
``Retry-After``, a separate budget for malformed bodies, counts per reason); the ``openai`` client's own retries
and response models would have to be worked around, and ``httpx``'s pool rescans every pooled connection per
request (``python benchmarks/data_pipeline.py --compare-clients``: 91 req/s at 64 concurrent requests against 968
for ``aiohttp``). The ``HTTP(S)_PROXY`` / ``NO_PROXY`` proxy is resolved once per backend: aiohttp's
``trust_env=True`` looks it up in a worker thread on every request, costlier than the rest of the client.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp

from vlm_capcurriculum.data.client import BackendStats, ModelAccessError, RequestFailed, RetryPolicy, Sample
from vlm_capcurriculum.data.request import ChatRequest, ImageInput, SamplingParams

logger = logging.getLogger(__name__)

# Statuses that say "this server (or this key) cannot serve us at all": stop the run, do not fail 15K rows.
_FATAL_STATUSES = {401: "unauthorized", 403: "forbidden", 404: "not found"}
# A server that never answered successfully and failed this many requests in a row is misconfigured.
_FATAL_STREAK = 5
# Tries of a request while no connection to the server ever succeeded (refused, no route, unknown host): a few
# seconds for a server still binding its port, not the full backoff budget (8 tries, about 91 s of silence).
_UNREACHABLE_ATTEMPTS = 3


class _Retryable(RequestFailed):
    def __init__(self, reason: str, message: str, *, malformed: bool = False, retry_after: float | None = None):
        super().__init__(reason, message)
        self.malformed = malformed
        self.retry_after = retry_after


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_text(raw: bytes, limit: int = 500) -> str:
    """The server's own error message from an error body (OpenAI ``error.message``, vLLM ``message``, FastAPI
    ``detail``), else the body itself, shortened."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
        elif data.get("message"):
            text = str(data["message"])
        elif data.get("detail"):
            text = str(data["detail"])
    return text if len(text) <= limit else text[:limit] + "..."


def parse_completion(raw: bytes) -> tuple[list[Sample], dict[str, Any]]:
    """Samples (in choice order) and usage from a chat-completion body; ``_Retryable(malformed=True)`` when the
    body is not one."""
    try:
        data = json.loads(raw)
    except ValueError as err:
        head = raw[:120].decode("utf-8", errors="replace")
        raise _Retryable("malformed", f"body is not JSON ({err}); it starts {head!r}", malformed=True) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        detail = error_text(raw, 200) if isinstance(data, dict) and "error" in data else "no 'choices' list"
        raise _Retryable("malformed", f"not a chat completion: {detail}", malformed=True)
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens")  # one choice: the usage is its own length (vlmcc eval reports it)
    if len(choices) > 1 or not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
        tokens = None
    samples: list[tuple[int, Sample]] = []
    for position, choice in enumerate(choices):
        message = choice.get("message") if isinstance(choice, dict) else None
        content = message.get("content", None) if isinstance(message, dict) else False
        if content is not None and not isinstance(content, str):
            raise _Retryable("malformed", f"choice {position} has no message.content string", malformed=True)
        index = choice.get("index", position)
        sample = Sample(content or "", choice.get("finish_reason"), tokens)
        samples.append((index if isinstance(index, int) else position, sample))
    return [sample for _, sample in sorted(samples, key=lambda item: item[0])], usage


class OpenAIBackend:
    """A chat-completions endpoint at ``base_url``, the API root (``http://host:8000/v1``). The API key is read
    from ``api_key_env`` (which must then be set), else from ``OPENAI_API_KEY`` (may be unset for local servers).
    ``timeout`` bounds a whole attempt (connect, queueing in the server, generation, body)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.model = model
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = retry or RetryPolicy()
        self.stats = BackendStats()
        self._rng = random.Random()
        self._headers = {"content-type": "application/json"}
        key = os.environ.get(api_key_env or "OPENAI_API_KEY")
        if key is None and api_key_env is not None:
            raise ModelAccessError(f"environment variable {api_key_env} (named as the API key source) is not set")
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None
        # The environment's HTTP(S)_PROXY / NO_PROXY (lower case too), resolved once (see the module docstring).
        url = urlsplit(self.url)
        self._proxy = urllib.request.getproxies().get(url.scheme)
        if url.hostname and urllib.request.proxy_bypass(url.hostname):
            self._proxy = None
        self._fatal: ModelAccessError | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._reachable = False
        self._answered = False
        self._failure_streak = 0

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None
        self._semaphore = None

    def _encode(self, request: ChatRequest, params: SamplingParams, n: int, seed: int | None) -> bytes:
        """The request body as UTF-8 JSON, each image's base64 data URL spliced in after encoding: ``json.dumps``
        would scan every byte of it (0.85 ms for a 100 KB image, more than the rest of the client's work)."""
        token = uuid.uuid4().hex
        images: list[ImageInput] = []

        def placeholder(image: ImageInput) -> str:
            images.append(image)
            return f"{token}:{len(images) - 1}"

        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.to_openai(placeholder),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if n > 1:
            body["n"] = n
        if seed is not None:
            body["seed"] = seed
        body.update(dict(params.extra))
        head, *tails = json.dumps(body, ensure_ascii=False).encode("utf-8").split(f'"{token}:'.encode("ascii"))
        parts = [head]
        for tail in tails:
            index, rest = tail.split(b'"', 1)
            parts += [b'"', images[int(index)].data_url().encode("ascii"), b'"', rest]
        return b"".join(parts)

    async def generate(self, request: ChatRequest, params: SamplingParams, n: int, seed: int | None) -> list[Sample]:
        try:
            return await self._generate(request, params, n, seed)
        except ModelAccessError as err:
            # Remembered, so requests already waiting for a slot stop without being sent.
            self._fatal = self._fatal or err
            raise

    async def _generate(self, request: ChatRequest, params: SamplingParams, n: int, seed: int | None) -> list[Sample]:
        # Encoded on the first attempt, once a slot is free: images are read and base64-encoded only for the
        # requests actually in flight, not for every queued one.
        payload: list[bytes] = []

        def encode() -> bytes:
            if not payload:
                payload.append(self._encode(request, params, n, seed))
            return payload[0]

        transient = malformed = 0
        while True:
            try:
                samples = await self._attempt(encode)
            except _Retryable as err:
                if err.malformed:
                    malformed += 1
                    exhausted = malformed >= self.retry.malformed_attempts
                else:
                    transient += 1
                    budget = self.retry.max_attempts
                    if err.reason == "connection" and not self._reachable:
                        budget = min(budget, _UNREACHABLE_ATTEMPTS)
                    exhausted = transient >= budget
                if exhausted:
                    if err.reason in ("connection", "timeout") and not self._reachable:
                        raise ModelAccessError(
                            f"{self.url} never answered: {err.message} (is the server running? check --base-url)"
                        ) from None
                    self._fail(RequestFailed(err.reason, err.message, attempts=transient + malformed))
                self.stats.retries[err.reason] += 1
                logger.debug("%s: retry %d after %s", self.model, transient + malformed, err.message)
                await asyncio.sleep(self.retry.delay(transient + malformed, self._rng, err.retry_after))
                continue
            except RequestFailed as err:
                self._fail(err)
            self._answered = True
            self._failure_streak = 0
            return samples

    def _fail(self, err: RequestFailed) -> NoReturn:
        """Count a request given up on and raise it, or stop the run when nothing has ever succeeded."""
        self._failure_streak += 1
        if not self._answered and self._failure_streak >= _FATAL_STREAK:
            raise ModelAccessError(
                f"{self.url}: the first {self._failure_streak} requests all failed, last with {err}"
            ) from None
        logger.warning("%s: request failed after %d attempt(s): %s", self.model, err.attempts, err)
        raise err from None

    async def _attempt(self, encode: Callable[[], bytes]) -> list[Sample]:
        if self._session is None or self._semaphore is None:  # created inside the running loop: bound to it
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_concurrency),
                # The whole-attempt deadline is asyncio.wait_for(timeout) below; only connecting has its own.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                headers=self._headers,
            )
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        async with self._semaphore:  # per attempt, released while backing off: a slow retry never idles a slot
            if self._fatal is not None:
                raise ModelAccessError(str(self._fatal))
            payload = encode()
            self.stats.started()
            try:
                return await asyncio.wait_for(self._post(self._session, payload), self.timeout)
            except asyncio.TimeoutError:
                raise _Retryable("timeout", f"no complete response within {self.timeout:g}s") from None
            finally:
                self.stats.finished()

    async def _post(self, session: aiohttp.ClientSession, payload: bytes) -> list[Sample]:
        try:
            async with session.post(self.url, data=payload, proxy=self._proxy) as response:
                self._reachable = True
                status = response.status
                try:
                    raw = await response.read()
                except asyncio.TimeoutError:
                    raise _Retryable("timeout", f"HTTP {status}: body did not arrive in time") from None
                except aiohttp.ClientError as err:
                    raise _Retryable(
                        "truncated", f"HTTP {status}: body cut off ({type(err).__name__}: {err})", malformed=True
                    ) from None
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
        except asyncio.TimeoutError as err:
            raise _Retryable("timeout", f"{type(err).__name__}: {err or 'timed out'}") from None
        except aiohttp.ClientError as err:
            raise _Retryable("connection", f"{type(err).__name__}: {err or 'connection failed'}") from None
        if 200 <= status < 300:
            samples, usage = parse_completion(raw)
            self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
            self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
            return samples
        message = f"HTTP {status} from {self.url}: {error_text(raw)}"
        if status == 429 or status == 408 or status >= 500:
            raise _Retryable(f"http_{status}", message, retry_after=retry_after)
        if status in _FATAL_STATUSES:
            raise ModelAccessError(f"{message} ({_FATAL_STATUSES[status]}: check --base-url, --model and the API key)")
        raise RequestFailed(f"http_{status}", message)
