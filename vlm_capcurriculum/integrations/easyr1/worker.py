"""The worker class the entry point hands to EasyR1: its ``FSDPWorker`` plus our engine operations.

Importing this module imports ``verl.workers.fsdp_workers``, which imports vLLM: import it only where the
run trains (or in the lane tests, which supply a test-only vLLM placeholder).
"""

from __future__ import annotations

from .private_api import resolve
from .worker_mixin import CurriculumWorkerMixin

FSDPWorker = resolve("FSDPWorker")


class CurriculumFSDPWorker(CurriculumWorkerMixin, FSDPWorker):  # type: ignore[misc, valid-type]
    """EasyR1's ``FSDPWorker`` with ``curriculum_*`` driver calls (the mixin must stay the first base)."""
