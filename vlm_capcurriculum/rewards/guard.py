"""A hard wall-clock limit on symbolic work: a small pool of worker processes that are killed when they overrun.

Why processes: sympy can spend minutes inside one C-level big-integer operation, where neither a signal handler
nor another thread gets to run; only killing the process stops it. Why ``subprocess`` and not ``multiprocessing``:
a fresh interpreter needs no start method or pickling, and starts from daemonic processes, Ray actors and threads.
Workers start on first use (or :func:`prestart_pool`) and live until the process exits; a forked child starts its
own pool. A task that overruns is killed, scored as ``timeout`` and counted; a warm spare takes its worker's place.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlm_capcurriculum.rewards.bounds import BOOT_TIMEOUT_S, DEFAULT_TIMEOUT_S, MAX_WORKERS

logger = logging.getLogger(__name__)

#: The module whose ``TASKS`` table names what a worker may run (tests start pools on a table of their own).
PRODUCTION_TASKS = "vlm_capcurriculum.rewards.symbolic"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(frozen=True)
class Outcome:
    """What became of one task: ``ok`` (``value`` is the result), ``timeout``, ``rejected`` or ``error``."""

    status: str
    value: Any = None


_STATS_LOCK = threading.Lock()
_STATS: collections.Counter[str] = collections.Counter()


def count(event: str, n: int = 1) -> None:
    with _STATS_LOCK:
        _STATS[event] += n


def guard_stats() -> dict[str, int]:
    """The counters since start (or :func:`reset_guard_stats`), for a trainer to log."""
    with _STATS_LOCK:
        keys = ("tasks", "timeouts", "rejected", "errors", "respawns", "oversize", "invalid_ground_truth")
        stats = {key: _STATS[key] for key in keys}
        stats.update({key: value for key, value in _STATS.items() if key.startswith("invalid_ground_truth_")})
        return stats


def reset_guard_stats() -> None:
    with _STATS_LOCK:
        _STATS.clear()


class _Worker:
    def __init__(self, tasks: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        # The kernel's parent-death signal fires when the *thread* that started the child ends: only safe from
        # the main thread. Elsewhere the worker relies on end of input and its CPU cap.
        env["VLMCC_GUARD_PDEATHSIG"] = "1" if threading.current_thread() is threading.main_thread() else "0"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vlm_capcurriculum.rewards.guard_worker", tasks],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buffer = b""
        self.ready = False
        self.boot_deadline = time.monotonic() + BOOT_TIMEOUT_S

    def send(self, message: list[Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()

    def read(self) -> tuple[list[Any], bool]:
        """Messages available now, and whether the worker has closed its output (died)."""
        eof = False
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            self.buffer += chunk
        messages = []
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            try:
                messages.append(json.loads(line))
            except ValueError:
                continue
        return messages, eof

    def kill(self) -> None:
        try:
            self.process.kill()
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.close_pipes()

    def shutdown(self, grace_s: float = 1.0) -> None:
        """End of input asks the worker to exit; it is killed if it does not."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=grace_s)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            pass
        self.kill()

    def close_pipes(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class GuardPool:
    """Runs named tasks (the ``TASKS`` table of the module ``tasks``) in worker processes, each under a hard
    deadline. Thread-safe: concurrent callers each claim their own workers."""

    def __init__(self, size: int | None = None, tasks: str = PRODUCTION_TASKS) -> None:
        configured = os.environ.get("VLMCC_REWARD_WORKERS")  # else half the cores, at most MAX_WORKERS
        self.size = size or max(1, int(configured) if configured else min(MAX_WORKERS, (os.cpu_count() or 2) // 2))
        self.tasks = tasks
        self.spare = 1
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._idle: list[_Worker] = []
        self._alive = 0
        self._closed = False
        self.owner_pid = os.getpid()

    def run(self, tasks: Sequence[tuple[str, Sequence[Any]]], timeout_s: float = DEFAULT_TIMEOUT_S) -> list[Outcome]:
        """Run every ``(task_name, args)`` and return their outcomes in order; never raises, never waits on one
        task longer than ``timeout_s`` (plus worker start-up, which only happens on first use or after a kill)."""
        results: list[Outcome | None] = [None] * len(tasks)
        if not tasks:
            return []
        count("tasks", len(tasks))
        owned: list[_Worker] = []
        try:
            self._run(tasks, timeout_s, results, owned)
        except Exception:  # a reward never raises into the trainer
            logger.exception("reward guard failed; the affected answers score 0")
            with self._lock:
                self._alive -= len(owned)
                self._released.notify_all()
            for worker in owned:
                worker.kill()
            owned.clear()
        finally:
            with self._lock:  # give the workers back, or stop them if the pool closed meanwhile
                if self._closed:
                    for worker in owned:
                        worker.shutdown(grace_s=0.2)
                    self._alive -= len(owned)
                else:
                    self._idle.extend(owned)
                self._released.notify_all()
        missing = sum(result is None for result in results)
        if missing:
            count("errors", missing)
        return [result if result is not None else Outcome("error", "not run") for result in results]

    def _run(
        self, tasks: Sequence[tuple[str, Sequence[Any]]], timeout_s: float, results: list, owned: list[_Worker]
    ) -> None:
        pending = collections.deque(range(len(tasks)))
        busy: dict[_Worker, tuple[int, float]] = {}
        boot_failures = 0
        while pending or busy:
            free = sum(1 for worker in owned if worker not in busy)
            self._claim(owned, want=len(pending) - free, block=not owned)
            if not owned and self._closed:
                for index in pending:
                    results[index] = Outcome("error", "pool closed")
                return
            for worker in list(owned):
                if worker.ready and worker not in busy and pending:
                    index = pending.popleft()
                    name, args = tasks[index]
                    try:
                        worker.send([index, name, list(args)])
                    except (OSError, ValueError):
                        pending.appendleft(index)
                        self._discard(owned, worker)
                        continue
                    busy[worker] = (index, time.monotonic() + timeout_s)
            if not owned:
                continue
            now = time.monotonic()
            deadlines = [deadline for _, deadline in busy.values()]
            deadlines += [worker.boot_deadline for worker in owned if not worker.ready]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 0.05
            poller = select.poll()  # not select.select: Ray processes may hold file descriptors above 1024
            for worker in owned:
                poller.register(worker.fd, select.POLLIN | select.POLLHUP | select.POLLERR)
            readable = {fd for fd, _ in poller.poll(min(wait_s, 1.0) * 1000)}
            for worker in list(owned):
                if worker.fd not in readable:
                    continue
                messages, eof = worker.read()
                for message in messages:
                    if message == ["ready"]:
                        worker.ready = True
                        continue
                    index, status, value = message
                    if worker in busy and busy[worker][0] == index:
                        del busy[worker]
                        results[index] = Outcome(status, value)
                        if status == "rejected":
                            count("rejected")
                        elif status == "error":
                            count("errors")
                if eof:
                    if worker in busy:
                        index, _ = busy.pop(worker)
                        results[index] = Outcome("error", "worker died")
                        count("errors")
                    if not worker.ready:
                        boot_failures += 1
                    self._discard(owned, worker)
            now = time.monotonic()
            for worker, (index, deadline) in list(busy.items()):
                if now >= deadline:
                    del busy[worker]
                    results[index] = Outcome("timeout")
                    count("timeouts")
                    self._discard(owned, worker)
            for worker in list(owned):
                if not worker.ready and now >= worker.boot_deadline:
                    boot_failures += 1
                    self._discard(owned, worker)
            if boot_failures >= 2 and not any(worker.ready for worker in owned):  # then none is busy either
                logger.error("reward guard workers fail to start; %d answers score 0", len(pending))
                for index in pending:
                    results[index] = Outcome("error", "no worker")
                count("errors", len(pending))
                pending.clear()

    def prestart(self) -> None:
        with self._lock:
            self._top_up()

    def wait_ready(self, timeout_s: float) -> bool:
        """Block until every started idle worker has warmed up (at most ``timeout_s``); whether they all did."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                self._refresh_idle()
                if all(worker.ready for worker in self._idle):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def _claim(self, owned: list[_Worker], want: int, block: bool) -> None:
        """Give the calling run up to ``want`` more workers (at most ``size`` in all), ready ones first."""
        with self._lock:
            while True:
                self._refresh_idle()
                self._top_up()
                self._idle.sort(key=lambda worker: worker.ready)  # ready ones at the end, popped first
                for _ in range(min(want, self.size - len(owned), len(self._idle))):
                    owned.append(self._idle.pop())
                if owned or not block or self._closed:
                    return
                self._released.wait(timeout=0.5)

    def _refresh_idle(self) -> None:
        """Read the start-up message of idle workers and drop the ones that died; the caller holds the lock."""
        for worker in list(self._idle):
            messages, eof = worker.read()
            if ["ready"] in messages:
                worker.ready = True
            if eof:
                self._idle.remove(worker)
                worker.kill()
                self._alive -= 1

    def _top_up(self) -> None:
        """Keep ``size`` workers plus one spare alive (the first ones included), so that a killed worker's replacement
        is already warm; the caller holds the lock."""
        while self._alive < self.size + self.spare and not self._closed:
            self._idle.append(_Worker(self.tasks))
            self._alive += 1
            count("respawns")

    def _discard(self, owned: list[_Worker], worker: _Worker) -> None:
        worker.kill()
        owned.remove(worker)
        with self._lock:
            self._alive -= 1
            self._top_up()  # the spare takes over; a new spare starts warming now
            self._released.notify_all()

    def close(self) -> None:
        """Stop the idle workers now and the busy ones as soon as their batch ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._alive -= len(idle)
        for worker in idle:
            worker.shutdown()


_POOL: GuardPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> GuardPool:
    """The process-wide pool, created on first use (and anew in a forked child)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.owner_pid != os.getpid():
            _POOL = GuardPool()
        return _POOL


def configure_pool(size: int) -> None:
    """Set how many worker processes this process's pool may run at once (plus one warm spare)."""
    if size < 1:
        raise ValueError(f"the reward guard needs at least one worker, got {size}")
    get_pool().size = int(size)


def prestart_pool(wait_s: float = 0.0) -> bool:
    """Start this process's guard workers in the background (entry points call it when they are loaded); with
    ``wait_s`` > 0, wait up to that long for them to be warm. Whether they are (always False without waiting)."""
    try:
        pool = get_pool()
        pool.prestart()
    except OSError:  # no processes available: the first symbolic answer will try again
        logger.warning("could not start reward guard workers", exc_info=True)
        return False
    return wait_s > 0 and pool.wait_ready(wait_s)


def shutdown_pool() -> None:
    """Stop this process's workers (registered with ``atexit``; call it to free them earlier)."""
    global _POOL
    with _POOL_LOCK:
        pool, _POOL = _POOL, None
    if pool is not None and pool.owner_pid == os.getpid():
        pool.close()


def _after_fork_in_child() -> None:
    global _POOL, _POOL_LOCK
    _POOL_LOCK = threading.Lock()  # the parent's lock may have been held by another thread at fork time
    for worker in _POOL._idle if _POOL is not None else []:
        worker.close_pipes()  # the parent's workers: never kill them from here
    _POOL = None


atexit.register(shutdown_pool)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
