"""The OpenAI-compatible backend against the fault-injecting loopback server: answers, images, every fault type,
retry budgets, clear errors, concurrency."""

from __future__ import annotations

import email.utils
import hashlib
import random
import socket
import time

import pytest
from data_helpers import FAST_RETRY
from fault_server import expected_answer

from vlm_capcurriculum.data.client import ModelAccessError, RequestFailed, RetryPolicy
from vlm_capcurriculum.data.openai_backend import OpenAIBackend, parse_retry_after
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams
from vlm_capcurriculum.data.runner import map_requests


def digest12(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def test_answers_in_order_with_images_as_data_urls(start_server, backend_for, images) -> None:
    server = start_server()
    requests = [
        ChatRequest.user("plain question"),
        ChatRequest.user("what colour? <image>", [images["red"]]),
        ChatRequest.user("compare", [images["green"], images["red"].read_bytes()]),
    ]
    results = map_requests(backend_for(server), requests, progress=False)
    red, green = digest12(images["red"].read_bytes()), digest12(images["green"].read_bytes())
    assert [r.text for r in results] == [
        expected_answer("m1", "plain question", [], None, 0),
        expected_answer("m1", "what colour? ", [red], None, 0),
        expected_answer("m1", "compare", [green, red], None, 0),
    ]
    # The image travels as an OpenAI image_url content item holding a base64 data URL.
    sent = next(r.body for r in server.received if r.prompt == "compare")
    items = sent["messages"][0]["content"]
    assert [item["type"] for item in items] == ["image_url", "image_url", "text"]
    assert items[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert sent["temperature"] == 0.0 and sent["max_tokens"] == 1024 and "n" not in sent and "seed" not in sent


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("500", "http_500"),
        ("502", "http_502"),
        ("503", "http_503"),
        ("429", "http_429"),
        ("408", "http_408"),
        ("reset", "connection"),
        ("slow:2", "timeout"),
        ("malformed", "malformed"),
        ("truncated", "truncated"),
        ("empty", "malformed"),
    ],
)
def test_each_fault_is_retried_until_success(start_server, backend_for, fault, reason) -> None:
    server = start_server(faults={"q": [fault, fault]})
    backend = backend_for(server, timeout=0.3)
    [result] = map_requests(backend, [ChatRequest.user("q")], progress=False)
    assert result.text == expected_answer("m1", "q", [], None, 0)
    assert server.attempts["q"] == 3
    assert backend.stats.retries == {reason: 2}
    assert backend.stats.attempts == 3


def test_malformed_bodies_have_their_own_budget_then_fail_the_item_only(start_server, backend_for) -> None:
    server = start_server(faults={"bad": ["malformed"] * 10, "cut": ["truncated"] * 10})
    backend = backend_for(server)
    results = map_requests(backend, [ChatRequest.user(p) for p in ("bad", "good", "cut")], progress=False)
    bad, good, cut = results
    assert isinstance(bad, RequestFailed) and bad.reason == "malformed" and "not JSON" in bad.message
    assert isinstance(cut, RequestFailed) and cut.reason == "truncated" and "cut off" in cut.message
    assert good.text == expected_answer("m1", "good", [], None, 0)
    assert server.attempts["bad"] == server.attempts["cut"] == FAST_RETRY.malformed_attempts


def test_transient_budget_exhausted_names_status_and_server_text(start_server, backend_for) -> None:
    server = start_server(faults={"q": ["503"] * 10})
    [result] = map_requests(backend_for(server), [ChatRequest.user("q")], progress=False)
    assert isinstance(result, RequestFailed)
    assert result.reason == "http_503"
    assert "HTTP 503" in result.message and "injected 503 for 'q'" in result.message
    assert server.attempts["q"] == FAST_RETRY.max_attempts == result.attempts


@pytest.mark.parametrize("status", ["400", "413", "422"])
def test_other_4xx_is_a_clear_error_without_retry(start_server, backend_for, status) -> None:
    server = start_server(faults={"q": [status] * 3})
    backend = backend_for(server)
    [result, ok] = map_requests(backend, [ChatRequest.user("q"), ChatRequest.user("fine")], progress=False)
    assert isinstance(result, RequestFailed) and result.reason == f"http_{status}"
    assert f"HTTP {status} from {server.base_url}/chat/completions: injected {status} for 'q'" == result.message
    assert server.attempts["q"] == 1 and not backend.stats.retries
    assert ok.text.startswith("m1|fine")


@pytest.mark.parametrize("status", ["401", "403", "404"])
def test_auth_and_not_found_stop_the_run(start_server, backend_for, status) -> None:
    server = start_server(default_faults=[status])
    with pytest.raises(ModelAccessError, match=f"HTTP {status} from .*injected {status}"):
        # 4 slots: the requests already in flight when the first 401 arrives are answered, the rest never sent
        map_requests(
            backend_for(server, max_concurrency=4), [ChatRequest.user(f"q{i}") for i in range(20)], progress=False
        )
    assert len(server.received) < 20


def test_a_server_that_rejects_every_first_request_stops_the_run(start_server, backend_for) -> None:
    server = start_server(default_faults=["400"])
    backend = backend_for(server, max_concurrency=1)
    with pytest.raises(ModelAccessError, match="first 5 requests all failed, last with http_400"):
        map_requests(backend, [ChatRequest.user(f"q{i}") for i in range(50)], progress=False)
    assert len(server.received) == 5


def test_unreachable_server_stops_the_run() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m1", retry=FAST_RETRY, connect_timeout=1.0)
    with pytest.raises(ModelAccessError, match="never answered: ClientConnectorError: Cannot connect to host"):
        map_requests(backend, [ChatRequest.user(f"q{i}") for i in range(10)], progress=False)
    assert backend.stats.retries["connection"] >= 2  # a few quick tries (tests/data/test_stalls_and_shared_cache.py)


def test_retry_after_is_obeyed(start_server, backend_for) -> None:
    server = start_server(faults={"q": ["429:1"]})
    backend = backend_for(server)
    [result] = map_requests(backend, [ChatRequest.user("q")], progress=False)
    assert result.text.startswith("m1|q")
    first, second = (r.at for r in server.received)
    # Retry-After: 1 beats the 5-20 ms backoff of the test policy; jitter adds at most 10%.
    assert 1.0 <= second - first < 1.5
    assert backend.stats.retries == {"http_429": 1}


def test_parse_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(future) <= 31


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=5.0)
    rng = random.Random(0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        delays = [policy.delay(retry, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not fixed
    assert 5.0 <= policy.delay(1, rng, retry_after=60) <= 5.5  # capped Retry-After


@pytest.mark.parametrize("limit", [1, 4])
def test_concurrency_bound_is_respected(start_server, backend_for, limit) -> None:
    server = start_server(latency=0.05)
    backend = backend_for(server, max_concurrency=limit)
    results = map_requests(backend, [ChatRequest.user(f"q{i}") for i in range(6 * limit)], progress=False)
    assert all(not isinstance(r, RequestFailed) for r in results)
    assert server.peak_in_flight == limit  # reached, never exceeded (counted by the server)
    assert backend.stats.peak_in_flight == limit


def test_sampling_params_and_extra_fields_are_sent(start_server, backend_for) -> None:
    server = start_server()
    params = SamplingParams(temperature=0.7, top_p=0.9, max_tokens=64, n=3, seed=11, extra=(("top_k", 20),))
    [result] = map_requests(backend_for(server), [ChatRequest.user("q", system="be brief")], params, progress=False)
    assert result.texts == [expected_answer("m1", "be briefq", [], 11, i) for i in range(3)]
    body = server.received[0].body
    assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "n", "seed", "top_k")} == {
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 64,
        "n": 3,
        "seed": 11,
        "top_k": 20,
    }
    assert body["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}]


def test_api_key_comes_from_the_environment(start_server, monkeypatch) -> None:
    server = start_server()
    monkeypatch.setenv("MY_SERVER_KEY", "sk-test")
    backend = OpenAIBackend(server.base_url, "m1", api_key_env="MY_SERVER_KEY")
    map_requests(backend, [ChatRequest.user("q")], progress=False)
    assert server.received[0].headers["authorization"] == "Bearer sk-test"
    monkeypatch.delenv("MY_SERVER_KEY")
    with pytest.raises(ModelAccessError, match="MY_SERVER_KEY"):
        OpenAIBackend(server.base_url, "m1", api_key_env="MY_SERVER_KEY")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    map_requests(OpenAIBackend(server.base_url, "m1"), [ChatRequest.user("q2")], progress=False)
    assert "authorization" not in server.received[-1].headers


def test_a_server_failing_everything_with_5xx_stops_the_run(start_server, backend_for) -> None:
    server = start_server(default_faults=["500"] * 100)
    backend = backend_for(server, max_concurrency=1)
    with pytest.raises(ModelAccessError, match="first 5 requests all failed, last with http_500"):
        map_requests(backend, [ChatRequest.user(f"q{i}") for i in range(50)], progress=False)
    # Retries release their slot while backing off, so other requests start meanwhile; the run still stops
    # long before every request has used its whole budget.
    assert len(server.received) < 50 * FAST_RETRY.max_attempts


def test_an_unreadable_image_fails_its_request_only(start_server, backend_for, tmp_path) -> None:
    server = start_server()
    results = map_requests(
        backend_for(server), [ChatRequest.user("a", [tmp_path / "gone.png"]), ChatRequest.user("b")], progress=False
    )
    assert isinstance(results[0], RequestFailed) and results[0].reason == "bad_input"
    assert "gone.png" in results[0].message and results[1].text.startswith("m1|b")


def test_environment_proxy_is_used_and_no_proxy_bypasses_it(start_server, backend_for, monkeypatch) -> None:
    proxy = start_server()  # answers whatever it is sent, so it can stand in for a forward proxy
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.setenv("NO_PROXY", "bypassed.invalid")
    monkeypatch.delenv("no_proxy", raising=False)
    # A host that does not resolve: only the proxy can answer for it.
    backend = OpenAIBackend("http://model-host.invalid:8000/v1", "m1", retry=FAST_RETRY, timeout=5.0)
    [answer] = map_requests(backend, [ChatRequest.user("via proxy")], progress=False)
    assert answer.text == expected_answer("m1", "via proxy", [], None, 0)
    assert proxy.received[0].headers["host"] == "model-host.invalid:8000"
    bypassed = OpenAIBackend("http://bypassed.invalid/v1", "m1", retry=FAST_RETRY, connect_timeout=1.0)
    with pytest.raises(ModelAccessError, match="never answered"):
        map_requests(bypassed, [ChatRequest.user("direct")], progress=False)
    assert len(proxy.received) == 1
