"""The ``verl.plugins`` entry point, checked the way verl uses it: ``import verl`` in a fresh interpreter.

Entry points exist only for an installed distribution (CI installs the project with ``pip install -e .[verl,...]``);
where the project is not installed the fresh-process tests are skipped, and where it is installed without our
entry point they fail.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap

import pytest
from testkit import REPO

pytest.importorskip("verl")

ENTRY_POINT = "vlm_capcurriculum.integrations.verl.plugin"


def _require_installed_entry_point() -> None:
    try:
        distribution = importlib.metadata.distribution("vlm-capcurriculum")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("vlm-capcurriculum is not installed here (pip install -e .[verl]); entry points need it")
    ours = [ep for ep in distribution.entry_points if ep.group == "verl.plugins"]
    assert [(ep.name, ep.value) for ep in ours] == [("capcurriculum", ENTRY_POINT)], "reinstall: entry point stale"


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def test_import_verl_loads_the_plugin_and_the_mode_resolves() -> None:
    _require_installed_entry_point()
    result = _fresh_python(
        """
        import sys
        import verl

        assert "vlm_capcurriculum.integrations.verl.plugin" in sys.modules, "plugin not loaded by import verl"
        # import-light: the trainer (and verl's trainer base) load only when the trainer code is imported
        assert "vlm_capcurriculum.integrations.verl.trainer" not in sys.modules

        from verl.trainer.ppo.v1 import get_trainer_cls  # what TaskRunnerV1.run imports

        cls = get_trainer_cls("capcurriculum")
        print(f"{cls.__module__}.{cls.__qualname__}")
        print(get_trainer_cls("sync").__qualname__)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "vlm_capcurriculum.integrations.verl.trainer.CapCurriculumTrainer",
        "PPOTrainerSync",
    ]


def test_a_broken_trainer_import_is_loud_and_only_breaks_our_mode() -> None:
    _require_installed_entry_point()
    result = _fresh_python(
        """
        import sys

        sys.modules["vlm_capcurriculum.integrations.verl.trainer"] = None  # make its import fail
        import verl
        from verl.trainer.ppo.v1.trainer_base import get_trainer_cls

        assert get_trainer_cls("sync").__qualname__ == "PPOTrainerSync"  # other modes unaffected
        try:
            get_trainer_cls("capcurriculum")(None)
        except RuntimeError as error:
            print("RAISED:", error)
        """
    )
    assert result.returncode == 0, result.stderr
    # logged at ERROR with the traceback as soon as verl's trainer base is imported ...
    assert "ERROR" in result.stderr
    assert "trainer mode 'capcurriculum' could not be registered" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    # ... and selecting the mode raises with the cause
    assert "RAISED: vlm-capcurriculum's verl trainer mode 'capcurriculum' failed to import" in result.stdout
    assert "import of vlm_capcurriculum.integrations.verl.trainer halted" in result.stdout


def test_plugin_module_is_standard_library_only() -> None:
    """It runs inside ``import verl`` in every Ray process: it must not import torch, verl or ray itself."""
    result = _fresh_python(
        """
        import importlib, importlib.abc, sys

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "verl", "ray", "transformers", "omegaconf"):
                    raise ImportError(f"plugin imported {name}")
                return None

        sys.meta_path.insert(0, Blocker())
        import vlm_capcurriculum.integrations.verl.plugin as plugin
        assert any(type(f).__name__ == "_AfterImport" for f in sys.meta_path)
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_import_verl_applies_the_internvl_patches() -> None:
    """In a fresh process (as in every Ray worker), importing verl's modules gives the patched names (issue 15):
    ``hf_processor`` (also where verl bound it by name), the agent loop's prompt decode, InternVL's text-only forward.
    """
    _require_installed_entry_point()
    result = _fresh_python(
        """
        import verl
        from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
        from verl.utils import hf_processor
        from verl.workers.config import model
        from transformers.models.internvl.modeling_internvl import InternVLModel

        patched = [hf_processor, model.hf_processor, AgentLoopWorker._compute_multi_modal_inputs, InternVLModel.forward]
        print([getattr(function, "_vlmcc_patched", False) for function in patched])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[True, True, True, True]"
