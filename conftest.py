"""Fixtures every test directory shares (here, at the repository root, so that no test directory is put on
``sys.path`` for them: ``tests/evaluate`` would shadow the ``evaluate`` package)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root: the recipes' and the samples' data paths are relative to it."""
    monkeypatch.chdir(REPO)
    return REPO
