"""vllm_free.py: EasyR1's config imports without vLLM, and nothing changes where vLLM is installed.

Each case runs in a fresh interpreter: which modules a process has imported is exactly what is being tested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def _run(script: str, *, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env, timeout=300
    )


def test_config_loads_without_vllm_and_rollout_fails_loudly():
    result = _run(
        """
        import importlib.util, sys
        assert importlib.util.find_spec("vllm") is None
        from vlm_capcurriculum.integrations.easyr1.config import load_config
        from vlm_capcurriculum.integrations.easyr1.vllm_free import VLLMUnavailableError, is_config_only
        config = load_config(["worker.rollout.n=5"])
        assert config.worker.rollout.n == 5 and is_config_only()
        assert "vllm" not in sys.modules
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


def test_nothing_is_patched_when_vllm_is_importable(tmp_path):
    # A stand-in "installed vLLM" whose import announces itself: if EasyR1's real rollout package __init__ runs,
    # it imports vllm and this error surfaces; if our config-only path ran instead, it would not.
    (tmp_path / "vllm").mkdir()
    (tmp_path / "vllm" / "__init__.py").write_text("raise ImportError('the installed vllm was imported')\n")
    result = _run(
        """
        from vlm_capcurriculum.integrations.easyr1.vllm_free import allow_config_import_without_vllm, is_config_only
        assert allow_config_import_without_vllm() is False and not is_config_only()
        import verl.trainer.config
        """,
        extra_path=tmp_path,
    )
    assert result.returncode != 0
    assert "the installed vllm was imported" in result.stderr
