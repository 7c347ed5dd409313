"""The guard's worker process: reads tasks as JSON lines on stdin, answers on a private copy of stdout.

Started by :class:`vlm_capcurriculum.rewards.guard.GuardPool` as ``python -m vlm_capcurriculum.rewards.guard_worker
MODULE`` (a fresh interpreter, not a fork, so it works from daemonic processes, Ray actors and threads alike), where
``MODULE`` holds the ``TASKS`` table (in production :data:`vlm_capcurriculum.rewards.symbolic.TASKS`; the module name
comes from the pool's code, never from a message). Messages:

* worker -> parent, once: ``["ready"]`` after imports are warm;
* parent -> worker: ``[task_id, task_name, [args...]]``; task names index ``TASKS``, never code;
* worker -> parent: ``[task_id, status, value]`` with status ``ok``, ``rejected`` (the answer is too large to
  evaluate) or ``error``.

The worker limits itself so that even an orphan cannot run away: address space (``VLMCC_GUARD_MEMORY_MB``), CPU
seconds per task (``VLMCC_GUARD_TASK_CPU_S``, SIGXCPU ends it), death with its parent where the kernel supports it,
and exit on end of input.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys

from vlm_capcurriculum.rewards import symbolic
from vlm_capcurriculum.rewards.bounds import WORKER_MEMORY_MB, WORKER_TASK_CPU_S


def _limit_self() -> None:
    try:
        import resource
    except ImportError:  # not POSIX: the parent's kill is the only limit
        return
    memory_mb = int(os.environ.get("VLMCC_GUARD_MEMORY_MB", WORKER_MEMORY_MB))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if sys.platform.startswith("linux") and os.environ.get("VLMCC_GUARD_PDEATHSIG") == "1":
        try:
            import ctypes
            import signal

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _cpu_cap_next_task() -> None:
    """Let the next task use at most VLMCC_GUARD_TASK_CPU_S more CPU seconds (the kernel enforces it)."""
    try:
        import resource
    except ImportError:
        return
    cap = float(os.environ.get("VLMCC_GUARD_TASK_CPU_S", WORKER_TASK_CPU_S))
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + cap) + 1
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    _limit_self()
    tasks = importlib.import_module(sys.argv[1]).TASKS
    symbolic.warm_up()
    protocol.write('["ready"]\n')
    for line in sys.stdin:
        try:
            task_id, name, args = json.loads(line)
        except (ValueError, TypeError):
            continue
        _cpu_cap_next_task()
        try:
            reply = [task_id, "ok", tasks[name](*args)]
        except symbolic.TooLarge:
            reply = [task_id, "rejected", False]
        except (Exception, RecursionError, MemoryError) as error:
            reply = [task_id, "error", type(error).__name__]
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
