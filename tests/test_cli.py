from __future__ import annotations

import subprocess
import sys

from vlm_capcurriculum import __version__
from vlm_capcurriculum.cli import main


def test_version_flag(capsys) -> None:
    try:
        main(["--version"])
    except SystemExit as exit_:
        assert exit_.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails() -> None:
    result = subprocess.run([sys.executable, "-m", "vlm_capcurriculum"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "usage: vlmcc" in result.stdout
