"""Helpers that tests in several directories share.

A plain module on pytest's ``pythonpath`` (see pyproject.toml), not a ``tests`` package: an installed distribution
may already own the top-level name ``tests``, and putting ``tests/`` itself on ``sys.path`` would let
``tests/evaluate`` shadow the ``evaluate`` package.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RECIPES_CONFIG = REPO / "recipes" / "config.yaml"


def qwen(final: str, reasoning: str = "Let me work through this step by step.") -> str:
    """A response in the paper's format ``<think> reasoning </think> final``, as Qwen2.5-VL writes it."""
    return f"<think>\n{reasoning}\n</think>\n\n{final}"
