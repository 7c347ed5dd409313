"""Cached model calls: re-runs make no request, a new model does only its own work, samples are keyed by index."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from data_helpers import FAST_RETRY, cached_samples
from fault_server import expected_answer

from vlm_capcurriculum.data.cache import CacheError, ResponseCache
from vlm_capcurriculum.data.client import RequestFailed
from vlm_capcurriculum.data.request import ChatRequest, SamplingParams, request_key
from vlm_capcurriculum.data.runner import Runner, map_requests


def test_rerun_is_served_from_the_cache(start_server, backend_for, images, tmp_path) -> None:
    server = start_server()
    requests = [ChatRequest.user(f"q{i} <image>", [images["red"] if i % 2 else images["green"]]) for i in range(12)]
    cache = tmp_path / "answers.sqlite"
    first = map_requests(backend_for(server), requests, cache=cache, progress=False)
    assert server.completions == 12
    backend = backend_for(server)
    second = map_requests(backend, requests, cache=cache, progress=False)
    assert server.completions == 12  # the second run made no request
    assert backend.stats.attempts == 0
    assert [r.texts for r in second] == [r.texts for r in first]
    # A copy of an image under another path is the same request.
    moved = [ChatRequest.user("q1 <image>", [images["red_copy"]])]
    assert map_requests(backend_for(server), moved, cache=cache, progress=False)[0].text == first[1].text
    assert server.completions == 12


def test_a_second_model_does_only_its_own_work(start_server, backend_for, tmp_path) -> None:
    server = start_server()
    requests = [ChatRequest.user(f"q{i}") for i in range(10)]
    cache = tmp_path / "answers.sqlite"
    map_requests(backend_for(server, "small"), requests, cache=cache, progress=False)

    async def both() -> tuple[list, list]:
        async with Runner(cache) as runner:
            small, large = backend_for(server, "small"), backend_for(server, "large")
            answers = await asyncio.gather(*(runner.complete(b, r) for b in (small, large) for r in requests))
            return answers[:10], answers[10:]

    small, large = asyncio.run(both())
    assert [r.body["model"] for r in server.received].count("large") == 10
    assert [r.body["model"] for r in server.received].count("small") == 10  # only the first run's
    assert large[3].text == expected_answer("large", "q3", [], None, 0)
    assert small[3].text == expected_answer("small", "q3", [], None, 0)


def test_samples_are_cached_per_index_so_more_samples_cost_only_the_difference(start_server, backend_for, tmp_path):
    server = start_server()
    cache = tmp_path / "answers.sqlite"
    request = [ChatRequest.user("q")]
    [three] = map_requests(backend_for(server), request, SamplingParams(temperature=1.0, n=3, seed=5), cache=cache)
    assert three.texts == [expected_answer("m1", "q", [], 5, i) for i in range(3)]
    [five] = map_requests(backend_for(server), request, SamplingParams(temperature=1.0, n=5, seed=5), cache=cache)
    # Samples 3 and 4 come from one request for n=2 seeded with seed + first missing index.
    assert five.texts[:3] == three.texts
    assert five.texts[3:] == [expected_answer("m1", "q", [], 8, i) for i in range(2)]
    assert [(r.body.get("n"), r.body["seed"]) for r in server.received] == [(3, 5), (2, 8)]
    [again] = map_requests(backend_for(server), request, SamplingParams(temperature=1.0, n=4, seed=5), cache=cache)
    assert again.texts == five.texts[:4] and len(server.received) == 2


def test_servers_that_ignore_n_are_asked_once_per_sample_with_distinct_seeds(start_server, backend_for, tmp_path):
    server = start_server(honour_n=False)  # like `transformers serve`
    [result] = map_requests(
        backend_for(server), [ChatRequest.user("q")], SamplingParams(temperature=1.0, n=3, seed=5), progress=False
    )
    assert result.texts == [expected_answer("m1", "q", [], seed, 0) for seed in (5, 6, 7)]
    assert [r.body["seed"] for r in server.received] == [5, 6, 7]


def test_identical_requests_in_flight_are_made_once(start_server, backend_for, tmp_path) -> None:
    server = start_server(latency=0.05)
    results = map_requests(backend_for(server), [ChatRequest.user("same")] * 8, cache=tmp_path / "c.sqlite")
    assert server.completions == 1
    assert [r.texts for r in results] == [results[0].texts] * 8


def test_failures_are_not_cached_and_retried_next_run(start_server, backend_for, tmp_path) -> None:
    server = start_server(faults={"q": ["500"] * FAST_RETRY.max_attempts})
    cache = tmp_path / "answers.sqlite"
    [failed] = map_requests(backend_for(server), [ChatRequest.user("q")], cache=cache, progress=False)
    assert isinstance(failed, RequestFailed)
    assert cached_samples(cache) == 0
    [answered] = map_requests(backend_for(server), [ChatRequest.user("q")], cache=cache, progress=False)
    assert answered.text == expected_answer("m1", "q", [], None, 0)


def test_cache_records_what_each_key_stands_for(start_server, backend_for, images, tmp_path) -> None:
    server = start_server()
    request = ChatRequest.user("q <image>", [images["red"]])
    map_requests(backend_for(server), [request], SamplingParams(n=2), cache=tmp_path / "c.sqlite", progress=False)
    key = request_key("m1", request, SamplingParams())
    assert cached_samples(tmp_path / "c.sqlite", "m1") == 2 and cached_samples(tmp_path / "c.sqlite", "other") == 0
    store = ResponseCache(tmp_path / "c.sqlite")
    assert set(store.get(key, 5)) == {0, 1}
    store.close()
    with sqlite3.connect(tmp_path / "c.sqlite") as db:  # the requests table says what the key stands for
        [(payload,)] = db.execute("SELECT payload FROM requests WHERE key = ?", (key,)).fetchall()
    assert json.loads(payload)["model"] == "m1" and json.loads(payload)["messages"][0]["content"][1] == {
        "type": "image",
        "sha256": hashlib.sha256(images["red"].read_bytes()).hexdigest(),
    }


def test_not_a_cache_file_is_a_clear_error(tmp_path) -> None:
    bogus = tmp_path / "answers.sqlite"
    bogus.write_text("this is not sqlite, it is a text file that someone put here" * 20)
    with pytest.raises(CacheError, match="not a usable answer cache"):
        ResponseCache(bogus)


def test_cache_survives_sigkill_during_writes(tmp_path) -> None:
    """A writer killed mid-stream leaves a consistent database holding every committed sample."""
    path = tmp_path / "answers.sqlite"
    script = textwrap.dedent(
        f"""
        import sys
        from vlm_capcurriculum.data.cache import ResponseCache
        from vlm_capcurriculum.data.client import Sample
        cache = ResponseCache({str(path)!r})
        for i in range(10**9):
            cache.store_many([(f"key{{i}}", "m", "{{}}", [(0, Sample("answer " * 50 + str(i), "stop"))])])
            if i == 200:
                print("ready", flush=True)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.kill()
    process.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    count = cached_samples(path)
    assert count > 200
    cache = ResponseCache(path)
    # Committed entries are contiguous: 0..count-1 all present and intact.
    for i in (0, count // 2, count - 1):
        assert cache.get(f"key{i}", 1)[0].text.endswith(str(i))
    cache.close()


def test_answers_are_committed_in_groups_before_they_are_returned(start_server, backend_for, tmp_path) -> None:
    server = start_server()

    async def main() -> None:
        async with Runner(tmp_path / "answers.sqlite") as runner:
            backend = backend_for(server)
            first = await runner.complete(backend, ChatRequest.user("q"))
            assert cached_samples(tmp_path / "answers.sqlite") == 1  # committed before complete returned
            again = await runner.complete(backend, ChatRequest.user("q"))
            assert again.text == first.text and server.completions == 1
            commits = []
            store_many = runner.cache.store_many
            runner.cache.store_many = lambda entries: commits.append(len(entries)) or store_many(entries)
            server.latency = 0.2  # the 20 answers arrive together: one transaction, or a few
            await asyncio.gather(*(runner.complete(backend, ChatRequest.user(f"q{i}")) for i in range(20)))
            assert sum(commits) == 20 and len(commits) < 10
        assert cached_samples(tmp_path / "answers.sqlite") == 21

    asyncio.run(main())
