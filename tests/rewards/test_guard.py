"""The guard: worker processes with a hard per-task deadline that kill runaway work.

These tests run real worker processes (``python -m vlm_capcurriculum.rewards.guard_worker``) on the task table of
``guard_test_tasks.py``: production's plus ``ping`` and ``hang``, which spins the CPU inside the worker the way a
big-integer power does (holding the GIL), so only a kill can stop it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from pathlib import Path

import pytest

from vlm_capcurriculum.rewards import guard, score, verify
from vlm_capcurriculum.rewards.guard import GuardPool, Outcome

TEST_TASKS = "guard_test_tasks"


@pytest.fixture(autouse=True)
def _test_tasks_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers find ``guard_test_tasks`` (next to this file) on their PYTHONPATH."""
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))


@pytest.fixture
def pool():
    pool = GuardPool(size=1, tasks=TEST_TASKS)
    yield pool
    pool.close()


def test_production_workers_run_only_production_tasks() -> None:
    pool = GuardPool(size=1)
    try:
        assert pool.run([("ping", ()), ("equivalent", ("\\frac{1}{2}", "0.5"))]) == [
            Outcome("error", "KeyError"),
            Outcome("ok", True),
        ]
    finally:
        pool.close()


def _pids(pool: GuardPool) -> set[int]:
    return {worker.process.pid for worker in pool._idle}


def test_runs_tasks_in_order(pool: GuardPool) -> None:
    outcomes = pool.run([("equivalent", ("\\frac{1}{2}", "0.5")), ("ping", ()), ("equivalent", ("x", "y"))])
    assert outcomes == [Outcome("ok", True), Outcome("ok", True), Outcome("ok", False)]


@pytest.mark.timeout(120)
def test_runaway_task_is_killed_at_its_deadline(pool: GuardPool, stats_delta) -> None:
    pool.run([("ping", ())])  # start-up is not part of any deadline
    # a task the guard failed to kill would run for 10 minutes: the test's own timeout fails it (no wall-clock bound
    # here, which a loaded machine could break)
    outcomes = pool.run([("hang", (600,)), ("ping", ())], timeout_s=0.5)
    assert outcomes[0] == Outcome("timeout")
    assert outcomes[1] == Outcome("ok", True)  # the next task runs on the warm spare
    assert stats_delta()["timeouts"] == 1
    assert pool.run([("ping", ())]) == [Outcome("ok", True)]


@pytest.mark.timeout(120)
def test_killed_worker_is_really_gone(pool: GuardPool) -> None:
    pool.run([("ping", ())])
    busy_pids = _pids(pool)
    pool.run([("hang", (60,))], timeout_s=0.3)
    for pid in busy_pids - _pids(pool):
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left behind


@pytest.mark.timeout(120)
def test_prestarted_workers_boot_before_the_first_task(pool: GuardPool) -> None:
    assert not pool._idle  # nothing runs before it is asked for
    pool.prestart()
    assert len(pool._idle) == pool.size + pool.spare  # started in the background: nothing waited for yet
    assert pool.wait_ready(timeout_s=100)
    assert pool._idle and all(worker.ready for worker in pool._idle)
    booted = _pids(pool)
    assert pool.run([("ping", ())]) == [Outcome("ok", True)]
    assert _pids(pool) == booted  # the first task ran on a prestarted worker: no start inside the call


def test_worker_that_dies_is_replaced(pool: GuardPool) -> None:
    pool.run([("ping", ())])
    for worker in list(pool._idle):
        worker.process.kill()
        worker.process.wait()
    assert pool.run([("ping", ())] * 3) == [Outcome("ok", True)] * 3


def test_concurrent_callers_share_the_pool() -> None:
    pool = GuardPool(size=2, tasks=TEST_TASKS)
    results: dict[int, list[Outcome]] = {}

    def call(index: int) -> None:
        results[index] = pool.run([("equivalent", (f"{index}/2", f"{index * 5}/10"))] * 2)

    try:
        threads = [threading.Thread(target=call, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert results == {index: [Outcome("ok", True)] * 2 for index in range(6)}
    finally:
        pool.close()


def test_close_stops_every_worker() -> None:
    pool = GuardPool(size=2, tasks=TEST_TASKS)
    pool.run([("ping", ())] * 2)
    processes = [worker.process for worker in pool._idle]
    assert processes
    pool.close()
    assert all(process.poll() is not None for process in processes)
    assert pool.run([("ping", ())]) == [Outcome("error", "pool closed")]  # a closed pool answers, never hangs


# A chained inequality against a set: only the symbolic path (a guard worker) can decide it.
SYMBOLIC = ("<think>r</think> \\boxed{\\sum_{k=1}^{n} k}", "\\frac{n(n+1)}{2}")  # exact rules cannot decide it


def _score_in_child(queue) -> None:
    accuracy = score(*SYMBOLIC)["accuracy"]
    queue.put((accuracy, guard.guard_stats()["tasks"], os.getpid(), guard.get_pool().owner_pid))


@pytest.mark.timeout(180)
def test_works_inside_a_daemonic_process() -> None:
    """multiprocessing refuses children in daemonic processes; the guard's workers are plain subprocesses."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_score_in_child, args=(queue,), daemon=True)
    child.start()
    accuracy, tasks, pid, owner = queue.get(timeout=150)
    assert (accuracy, tasks, owner) == (1.0, 1, pid)
    child.join(timeout=30)


@pytest.mark.timeout(180)
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_survives_fork() -> None:
    assert score(*SYMBOLIC)["accuracy"] == 1.0
    parent_pool = guard.get_pool()
    parent_pids = {worker.process.pid for worker in parent_pool._idle}
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_score_in_child, args=(queue,))
    child.start()
    accuracy, _, pid, owner = queue.get(timeout=150)
    assert accuracy == 1.0 and owner == pid != os.getpid()
    child.join(timeout=30)
    assert guard.get_pool() is parent_pool  # the child built its own pool and left this one alone
    assert {worker.process.pid for worker in parent_pool._idle} >= parent_pids - {None}
    assert all(worker.process.poll() is None for worker in parent_pool._idle)
    assert verify("0 \\le y \\le 1", "y \\in [0, 1]")  # the parent's workers still answer
