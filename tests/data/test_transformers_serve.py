"""The OpenAI-compatible backend against a real maintained server: ``transformers serve`` with a tiny Qwen2.5-VL on CPU.

What this proves beyond the fault server: our request body (base64 data-URL images, sampling fields) is what a
real server's validation and processor accept, its response parses, and the cache sits correctly in front of it.
"""

from __future__ import annotations

import pytest

from vlm_capcurriculum.data.client import ModelAccessError, RetryPolicy
from vlm_capcurriculum.data.openai_backend import OpenAIBackend
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import map_requests

GREEDY = SamplingParams(temperature=0.0, max_tokens=6)


def backend(server: tuple[str, str], **options: object) -> OpenAIBackend:
    url, model = server
    options.setdefault("timeout", 120.0)
    return OpenAIBackend(url, model, **options)  # type: ignore[arg-type]


def test_images_reach_the_model_and_answers_parse(transformers_server, images) -> None:
    text_only = backend(transformers_server, max_concurrency=1)
    [plain] = map_requests(text_only, [ChatRequest.user("which colour?")], GREEDY, progress=False)
    with_image = backend(transformers_server, max_concurrency=1)
    [seen] = map_requests(
        with_image, [ChatRequest.user("<image>which colour?", [images["red"]])], GREEDY, progress=False
    )
    assert isinstance(plain.text, str) and isinstance(seen.text, str)
    assert plain.samples[0].finish_reason in ("stop", "length")
    # The server's processor expanded the image into vision tokens: Qwen2.5-VL resizes the 8x6 picture up to its
    # minimum of 56x56 pixels, 4x4 patches of 14 merged 2x2 into 4 tokens, between <|vision_start|> and <|vision_end|>.
    assert with_image.stats.prompt_tokens >= text_only.stats.prompt_tokens + 6
    assert 0 < with_image.stats.completion_tokens <= GREEDY.max_tokens


def test_greedy_answers_are_cached_and_replayed(transformers_server, images, tmp_path) -> None:
    requests = [
        ChatRequest.user("<image>which colour?", [images["red"]]),
        ChatRequest.user("<image>which colour?", [images["green"]]),
        ChatRequest.user("answer A B C or D"),
    ]
    cache = tmp_path / "answers.sqlite"
    first_backend = backend(transformers_server, max_concurrency=2)
    first = map_requests(first_backend, requests, GREEDY, cache=cache, progress=False)
    assert first_backend.stats.attempts == 3 and not first_backend.stats.retries
    replay_backend = backend(transformers_server)
    replay = map_requests(replay_backend, requests, GREEDY, cache=cache, progress=False)
    assert replay_backend.stats.attempts == 0
    assert [r.text for r in replay] == [r.text for r in first]
    # Greedy decoding on the real server is deterministic: uncached, the same answers come back.
    fresh = map_requests(backend(transformers_server, max_concurrency=1), requests, GREEDY, progress=False)
    assert [r.text for r in fresh] == [r.text for r in first]


def test_n_samples_from_a_server_that_ignores_n(transformers_server) -> None:
    # `transformers serve` lists `n` among unused fields and returns one choice; the runner asks once per sample
    # with seeds seed, seed+1, ... (one request at a time: the server seeds torch's global generator).
    params = SamplingParams(temperature=1.0, max_tokens=8, n=3, seed=1234)
    first_backend = backend(transformers_server, max_concurrency=1)
    [first] = map_requests(first_backend, [ChatRequest.user("which colour?")], params, progress=False)
    assert len(first.texts) == 3 and first_backend.stats.attempts == 3
    assert len(set(first.texts)) > 1  # sampled, not greedy
    [again] = map_requests(backend(transformers_server, max_concurrency=1), [ChatRequest.user("which colour?")], params)
    assert again.texts == first.texts  # seeded: reproducible


def test_a_model_the_server_cannot_load_stops_the_run(transformers_server) -> None:
    # Unpinned, the server tries to load whatever the request names and answers 500 when it cannot (or, now and
    # then, resets the connection while the load fails: seen in CI); every request failing from the start means a
    # misconfiguration, so the run stops instead of failing row after row.
    url, _ = transformers_server
    wrong = OpenAIBackend(
        url, "not-a-served-model", max_concurrency=1, timeout=60.0, retry=RetryPolicy(max_attempts=2, base_delay=0.01)
    )
    with pytest.raises(ModelAccessError, match=r"the first 5 requests all failed, last with (http_500|connection)"):
        map_requests(wrong, [ChatRequest.user(f"q{i}") for i in range(8)], progress=False)
