"""``vlmcc train`` finds the launcher the recipe's backend group names and hands it the composed config."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vlm_capcurriculum.cli import main


@pytest.fixture
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recipe with a backend group whose launcher writes what it received to a file."""
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "probe.yaml").write_text(
        "# @package _global_\nbackend:\n  name: probe\n  launcher: probe_launcher:launch\n  lr: ${train.lr}\n"
    )
    (tmp_path / "config.yaml").write_text("defaults:\n  - _self_\n  - optional backend: null\ntrain:\n  lr: 1.0e-6\n")
    (tmp_path / "probe_launcher.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path

            def launch(config, *, dry_run):
                Path(__file__).with_name("received.txt").write_text(f"{config.backend.lr} {dry_run}")
                return 3
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "probe_launcher", raising=False)  # each test's probe writes to its own tmp_path
    return tmp_path


def test_dispatches_to_the_backend_launcher(recipe: Path) -> None:
    status = main(["train", "--config", str(recipe / "config.yaml"), "backend=probe", "train.lr=2e-6", "--dry-run"])
    assert status == 3
    assert (recipe / "received.txt").read_text() == "2e-06 True"


def test_overrides_may_follow_options(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Launch scripts append the user's arguments: ``script.sh --dry-run train.lr=3e-6`` must keep the override."""
    status = main(["train", "--config", str(recipe / "config.yaml"), "--dry-run", "backend=probe", "train.lr=3e-6"])
    assert status == 3
    assert (recipe / "received.txt").read_text() == "3e-06 True"
    with pytest.raises(SystemExit):
        main(["train", "--config", str(recipe / "config.yaml"), "backend=probe", "--no-such-option"])
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_no_backend_is_a_one_line_error(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(recipe / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert "selects no backend" in err and "backend=<name>" in err


def test_unimportable_launcher_names_the_backend(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (recipe / "backend" / "ghost.yaml").write_text(
        "# @package _global_\nbackend:\n  name: ghost\n  launcher: no_such_module_xyz:launch\n"
    )
    assert main(["train", "--config", str(recipe / "config.yaml"), "backend=ghost"]) == 2
    err = capsys.readouterr().err
    assert "backend 'ghost'" in err and "no_such_module_xyz" in err


def test_launcher_must_name_a_function(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--config", str(recipe / "config.yaml"), "+backend.launcher=probe_launcher"]) == 2
    assert "package.module:function" in capsys.readouterr().err
