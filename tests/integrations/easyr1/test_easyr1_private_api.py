"""private_api.py against the installed EasyR1: every name resolves, and a missing one fails clearly."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap

import pytest

from vlm_capcurriculum.integrations.easyr1 import private_api
from vlm_capcurriculum.integrations.easyr1.private_api import API, EasyR1APIError, PrivateAPI


def test_installed_easyr1_is_the_tested_one():
    assert private_api.is_easyr1_installed()
    assert private_api.TESTED_EASYR1.startswith(private_api.easyr1_version())


def test_every_private_api_resolves_with_the_vllm_placeholder():
    """Run in a fresh interpreter: importing fsdp_workers/ray_trainer needs the test-only vLLM stand-in."""
    script = textwrap.dedent(
        """
        import lane_placeholders
        lane_placeholders.install("vllm", "qwen_vl_utils")
        from vlm_capcurriculum.integrations.easyr1 import private_api
        problems = private_api.check()
        private_api.check_live_knobs()
        print("\\n".join(problems) or "all resolved")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "all resolved", result.stdout


def test_trainer_and_worker_attributes_exist_at_this_version():
    """The names the wiring overrides (trainer) and reads (worker) are still there (read from the source files:
    importing those modules needs vLLM)."""
    source_dir = private_api.easyr1_location()
    trainer_source = (source_dir / "trainer" / "ray_trainer.py").read_text()
    worker_source = (source_dir / "workers" / "fsdp_workers.py").read_text()
    for name in private_api.TRAINER_ATTRIBUTES:
        assert f"def {name}(" in trainer_source or f"self.{name} =" in trainer_source, name
    for name in private_api.WORKER_ATTRIBUTES:
        assert f"self.{name} =" in worker_source, name


def test_a_missing_api_names_both_versions(monkeypatch):
    monkeypatch.setitem(API, "gone", PrivateAPI("verl.trainer.config", "NoSuchConfig", "a test entry"))
    with pytest.raises(EasyR1APIError) as error:
        private_api.resolve("gone")
    message = str(error.value)
    assert "verl.trainer.config.NoSuchConfig" in message and "a test entry" in message
    assert f"installed EasyR1 {private_api.easyr1_version()}" in message and private_api.TESTED_EASYR1 in message
    assert private_api.check(["gone"]) and not private_api.check(["PPOConfig"])


def test_a_missing_worker_attribute_is_explained():
    class NotInitialised:
        pass

    with pytest.raises(EasyR1APIError, match="has no attribute `fsdp_module`"):
        private_api.worker_attribute(NotInitialised(), "fsdp_module")
    with pytest.raises(KeyError):
        private_api.worker_attribute(NotInitialised(), "undeclared")


def test_live_knob_check_detects_a_cached_knob(monkeypatch):
    actor_cls = private_api.resolve("DataParallelPPOActor")
    private_api.check_live_knobs()
    original = inspect.getsource

    def without_live_read(obj):
        source = original(obj)
        return (
            source.replace("self.config.max_grad_norm", "self.max_grad_norm")
            if obj is actor_cls._optimizer_step
            else source
        )

    monkeypatch.setattr(private_api.inspect, "getsource", without_live_read)
    with pytest.raises(EasyR1APIError, match=r"no longer reads `self\.config\.max_grad_norm`"):
        private_api.check_live_knobs()
