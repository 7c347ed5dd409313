"""Fixtures every test directory shares (here, at the repository root, so that no test directory is put on
``sys.path`` for them: ``tests/evaluate`` would shadow the ``evaluate`` package). Shared plain helpers live in
``tests/support/testkit.py``."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import REPO


@pytest.fixture
def repo_root(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root: the recipes' and the samples' data paths are relative to it."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def recipe_run(repo_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run a recipe from the repository root with its ``OUTPUT_DIR`` under the test's temporary folder."""
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path / "out"))
    return repo_root
