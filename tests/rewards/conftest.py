"""Fixtures for the reward tests."""

from __future__ import annotations

import pytest

from vlm_capcurriculum.rewards import guard


@pytest.fixture
def stats_delta():
    """Guard counters gained during the test: ``stats_delta()`` returns {event: increase}."""
    before = guard.guard_stats()

    def delta() -> dict[str, int]:
        after = guard.guard_stats()
        return {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}

    return delta
