"""installed.py: the one EasyR1 version check, and EasyR1's config without vLLM.

The refusals run anywhere (a stand-in ``verl`` package on the path); the rest needs the lane's EasyR1. Each case
runs in a fresh interpreter: which ``verl`` and which modules a process has imported is what is being tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vlm_capcurriculum.integrations.easyr1.installed import SUPPORTED_VERSION, is_easyr1_installed

lane_only = pytest.mark.skipif(
    not (os.environ.get("EASYR1_SRC") and is_easyr1_installed()), reason="EasyR1 lane only (run_lane.sh)"
)


def _run(script: str, *, path: Path | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.mark.parametrize(
    ("version", "easyr1_layout", "expected"),
    [
        ("0.3.4", True, "EasyR1 0.3.4 is installed"),  # another EasyR1
        (SUPPORTED_VERSION, False, "EasyR1 is not installed."),  # volcengine verl, also named `verl`
    ],
)
def test_the_entry_point_refuses_any_other_verl_in_one_line(
    tmp_path: Path, version: str, easyr1_layout: bool, expected: str
) -> None:
    (tmp_path / "verl" / "trainer").mkdir(parents=True)
    (tmp_path / "verl" / "__init__.py").write_text(f"__version__ = {version!r}\n")
    if easyr1_layout:
        (tmp_path / "verl" / "trainer" / "data_loader.py").write_text("")
    result = _run(
        """
        from vlm_capcurriculum.integrations.easyr1.main import main
        raise SystemExit(main(["worker.rollout.n=5", "--dry-run"]))
        """,
        path=tmp_path,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert expected in line and "EasyR1 0.3.3.dev0 (hiyouga/EasyR1 @ b44b311)" in line


@lane_only
def test_config_loads_without_vllm_and_rollout_fails_loudly() -> None:
    result = _run(
        """
        import importlib.util, sys
        assert importlib.util.find_spec("vllm") is None
        from vlm_capcurriculum.integrations.easyr1.config import compose, to_config
        from vlm_capcurriculum.integrations.easyr1.installed import VLLMUnavailableError
        config = to_config(compose(["worker.rollout.n=5"])[0])
        assert config.worker.rollout.n == 5 and "vllm" not in sys.modules
        try:
            from verl.workers.rollout import vLLMRollout
        except VLLMUnavailableError as error:
            print("rollout:", error)
        try:
            import verl.workers.rollout.vllm_rollout_spmd
        except ModuleNotFoundError as error:
            print("spmd:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "rollout: `verl.workers.rollout.vLLMRollout` is not available: vLLM is not installed" in result.stdout
    assert "spmd: No module named 'vllm'" in result.stdout


@lane_only
def test_nothing_is_patched_when_vllm_is_importable(tmp_path: Path) -> None:
    # A stand-in "installed vLLM" whose import announces itself: EasyR1's real rollout package __init__ must run.
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("raise ImportError('the installed vllm was imported')\n")
    result = _run("import vlm_capcurriculum.integrations.easyr1.config", path=tmp_path)
    assert result.returncode != 0
    assert "the installed vllm was imported" in result.stderr
