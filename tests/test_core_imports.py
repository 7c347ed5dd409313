"""The core must import without torch, transformers or any RL framework (ARCHITECTURE.md).

Every module outside the framework-facing packages is imported in a fresh interpreter in which importing
one of the heavy packages raises, so an accidental top-level import fails here rather than on a user's
machine that has no GPU stack.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import vlm_capcurriculum

HEAVY = ("torch", "torchdata", "transformers", "trl", "verl", "vllm", "ray", "accelerate")
# Packages that exist to talk to a framework or to build models: allowed to need the heavy stack.
FRAMEWORK_FACING = ("vlm_capcurriculum.integrations", "vlm_capcurriculum.models")


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(vlm_capcurriculum.__path__, prefix="vlm_capcurriculum."):
        if info.name.startswith(FRAMEWORK_FACING) or info.name.endswith(".__main__"):
            continue
        names.append(info.name)
    return sorted(names)


def test_core_modules_import_without_heavy_packages() -> None:
    modules = core_modules()
    assert "vlm_capcurriculum.cli" in modules
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        HEAVY = {HEAVY!r}

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in HEAVY:
                    raise ImportError(f"core imported heavy package {{name!r}}")
                return None

        sys.meta_path.insert(0, Blocker())
        for module in {modules!r}:
            importlib.import_module(module)
        print("ok", len({modules!r}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")
