"""Installed-package checks before training: a missing backend framework and a leftover ``kernels``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata

import pytest
from testkit import REPO

from vlm_capcurriculum import launch
from vlm_capcurriculum.launch import LaunchError, check_backend_installed


def _fake_installed(monkeypatch: pytest.MonkeyPatch, versions: dict[str, str], requires: list[str]) -> None:
    def version(name: str) -> str:
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    monkeypatch.setattr(launch.metadata, "version", version)
    monkeypatch.setattr(launch.metadata, "requires", lambda name: requires if name == "transformers" else [])


def test_a_kernels_left_behind_by_a_transformers_downgrade_is_named_with_the_fix(monkeypatch) -> None:
    # transformers 5.10.4 names kernels only in its extras (>=0.12,<0.13); 5.11+ installed kernels 0.19.1.
    _fake_installed(
        monkeypatch,
        {"transformers": "5.10.4", "kernels": "0.19.1"},
        ['kernels<0.13,>=0.12.0; extra == "kernels"', "numpy>=1.17"],
    )
    [problem] = launch.leftover_problems()
    assert "kernels 0.19.1" in problem and "transformers 5.10.4" in problem and "pip uninstall -y kernels" in problem
    with pytest.raises(LaunchError, match="pip uninstall -y kernels"):
        check_backend_installed("trl")


def test_a_kernels_that_transformers_accepts_is_fine(monkeypatch) -> None:
    _fake_installed(monkeypatch, {"transformers": "5.25.0", "kernels": "0.19.1"}, ["kernels<0.20,>=0.19.1"])
    assert launch.leftover_problems() == []
    _fake_installed(monkeypatch, {"transformers": "5.10.4"}, ['kernels<0.13,>=0.12.0; extra == "kernels"'])
    assert launch.leftover_problems() == []


def test_the_installed_environment_has_no_known_leftover() -> None:
    assert launch.leftover_problems() == []


def test_verl_dry_run_without_verl_names_the_extra() -> None:
    """`vlmcc train backend=verl --dry-run` where verl is not installed: one line naming the package and the fix."""
    script = textwrap.dedent(
        """
        import importlib.util, sys
        # as if verl were not installed (it is, in the dev venv)
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] == "verl" else real(name, *a)
        from vlm_capcurriculum.cli import main
        sys.exit(main(["train", "--config", "recipes/config.yaml", "backend=verl", "--dry-run"]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "'verl' package, which is not installed" in lines[0] and "vlm-capcurriculum[verl]" in lines[0]
