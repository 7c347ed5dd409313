from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root: the recipes' sample data paths are relative to it."""
    monkeypatch.chdir(REPO)
    return REPO
