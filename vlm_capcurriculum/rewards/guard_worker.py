"""The guard's worker process (``python -m vlm_capcurriculum.rewards.guard_worker MODULE``, ``MODULE`` holding the
``TASKS`` table): JSON lines ``[task_id, task_name, [args...]]`` in on stdin, ``[task_id, status, value]`` out
(``ok``, ``rejected``: too large to evaluate, or ``error``) after one ``["ready"]`` once imports are warm. Task names
index ``TASKS``, never code. Even an orphan cannot run away: it caps its memory (``VLMCC_GUARD_MEMORY_MB``) and CPU
seconds per task (``VLMCC_GUARD_TASK_CPU_S``), dies with its parent where Linux allows, and exits on end of input.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import signal
import sys

from vlm_capcurriculum.rewards import symbolic
from vlm_capcurriculum.rewards.bounds import WORKER_MEMORY_MB, WORKER_TASK_CPU_S

try:
    import resource
except ImportError:  # not POSIX: the parent's kill is the only limit
    resource = None  # type: ignore[assignment]


def _limit_self() -> None:
    if resource is None:
        return
    memory_mb = int(os.environ.get("VLMCC_GUARD_MEMORY_MB", WORKER_MEMORY_MB))
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if sys.platform.startswith("linux") and os.environ.get("VLMCC_GUARD_PDEATHSIG") == "1":
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def _cpu_cap_next_task() -> None:
    """Let the next task use at most VLMCC_GUARD_TASK_CPU_S more CPU seconds (the kernel enforces it)."""
    if resource is None:
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
