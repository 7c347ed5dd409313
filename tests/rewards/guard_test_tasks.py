"""The task table the guard's tests run: production's, plus a no-op and a runaway task. Production workers never
see these (``GuardPool(tasks=...)`` names this module only in the tests)."""

from __future__ import annotations

import time

from vlm_capcurriculum.rewards.symbolic import TASKS as PRODUCTION_TASKS


def hang(seconds: float) -> bool:
    """Spin the CPU (holding the GIL, like a big-integer power): only a kill stops it."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return True


TASKS = {**PRODUCTION_TASKS, "ping": lambda: True, "hang": hang}
