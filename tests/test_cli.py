from __future__ import annotations

import subprocess
import sys

import pytest
from testkit import REPO

from vlm_capcurriculum import __version__
from vlm_capcurriculum.cli import main


def test_version_flag(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails() -> None:
    result = subprocess.run([sys.executable, "-m", "vlm_capcurriculum"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "usage: vlmcc" in result.stdout


def test_a_reader_that_stops_early_is_not_an_error() -> None:
    # `vlmcc plan --json | head -c 100`: the pipe closes while the plan is still being written.
    reader = subprocess.Popen(["head", "-c", "100"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    writer = subprocess.run(
        [sys.executable, "-m", "vlm_capcurriculum", "plan", "--config", "recipes/config.yaml", "--json"],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert reader.stdin is not None
    reader.stdin.close()
    reader.wait(timeout=60)
    assert writer.returncode == 0
    assert "Traceback" not in writer.stderr and "BrokenPipeError" not in writer.stderr
