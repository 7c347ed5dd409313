"""The shared format prompt: one file, found from anywhere, rendered as EasyR1 renders ``data.format_prompt``."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlm_capcurriculum.prompts import (
    THINK_BOXED,
    PromptNotFoundError,
    read_prompt,
    render_prompt,
    resolve_prompt,
)
from vlm_capcurriculum.rewards import format_score


def test_default_prompt_asks_for_the_format_the_reward_scores() -> None:
    text = render_prompt("  <image>How many cubes?\n")
    assert text.startswith("<image>How many cubes? You FIRST think")
    assert "<think> reasoning here </think> \\boxed{final answer here}" in text
    # The format the prompt's own example shows gets the full format reward.
    example = "<think> two cubes on the left, one on the right </think> \\boxed{3}"
    assert format_score(example) == 1.0


def test_resolve_prompt_finds_the_packaged_file_by_name_and_by_repo_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_prompt("think_boxed.jinja") == THINK_BOXED
    assert resolve_prompt("vlm_capcurriculum/prompts/think_boxed.jinja") == THINK_BOXED
    own = tmp_path / "mine.jinja"
    own.write_text("{{ content }} Answer in one word.", encoding="utf-8")
    assert resolve_prompt("mine.jinja") == own
    assert render_prompt("Colour?", read_prompt(own)) == "Colour? Answer in one word."


def test_missing_prompt_names_every_place_it_looked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PromptNotFoundError, match=r"nope\.jinja: no such file \(looked in .*nope\.jinja"):
        read_prompt("nope.jinja")
    # A missing prompt is a FileNotFoundError to callers that only know the builtin.
    assert issubclass(PromptNotFoundError, FileNotFoundError)
