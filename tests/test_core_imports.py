"""The core must import without any optional dependency (docs/architecture.md), so that ``pip install .`` alone
gives a working ``vlmcc --help`` and ``vlmcc plan``.

Every module outside the framework-facing packages is imported in a fresh interpreter in which importing any
package of an extra (read from pyproject.toml, so a new one is blocked without editing this file) or of the heavy
stack they pull in raises; an accidental top-level import fails here rather than on a user's core-only machine.
"""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from testkit import REPO

import vlm_capcurriculum

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the check itself needs no 3.10 run)

# What the extras pull in without naming it (import names).
TRANSITIVE = ("torch", "torchdata", "vllm", "ray", "tensorboard", "wandb", "numpy", "pandas", "kernels", "flash_attn")
IMPORT_NAME = {"pillow": "PIL", "transformers": "transformers", "pytest-timeout": "pytest_timeout"}
# Packages that exist to talk to a framework or to build models: allowed to need the heavy stack.
FRAMEWORK_FACING = ("vlm_capcurriculum.integrations", "vlm_capcurriculum.models")
# Core modules that need one extra, imported only where that extra is used (the `vlmcc data` client).
NEEDS_EXTRA = {"vlm_capcurriculum.data.openai_backend": "data"}


def extras() -> dict[str, list[str]]:
    """Each extra's import names, from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    out = {}
    for extra, requirements in project["optional-dependencies"].items():
        names = [re.match(r"[A-Za-z0-9_.\-]+", req).group(0).lower() for req in requirements]  # type: ignore[union-attr]
        out[extra] = [IMPORT_NAME.get(name, name.replace("-", "_")) for name in names]
    return out


def optional_packages() -> list[str]:
    return sorted({*TRANSITIVE, *(name for names in extras().values() for name in names)})


def core_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(vlm_capcurriculum.__path__, prefix="vlm_capcurriculum."):
        if info.name.startswith(FRAMEWORK_FACING) or info.name.endswith(".__main__"):
            continue
        names.append(info.name)
    return sorted(names)


def import_with_blocked(modules: list[str], blocked: list[str]) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        BLOCKED = set({blocked!r})

        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"core imported optional package {{name!r}}")
                return None

        sys.meta_path.insert(0, Blocker())
        for module in {modules!r}:
            importlib.import_module(module)
        print("ok", len({modules!r}))
        """
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


def test_every_extra_and_the_heavy_stack_are_blocked() -> None:
    blocked = optional_packages()
    for name in ("aiohttp", "httpx", "datasets", "PIL", "torch", "transformers", "trl", "verl", "ray", "accelerate"):
        assert name in blocked


def test_core_modules_import_without_optional_packages() -> None:
    modules = [name for name in core_modules() if name not in NEEDS_EXTRA]
    assert "vlm_capcurriculum.cli" in modules and "vlm_capcurriculum.cli.data" in modules
    result = import_with_blocked(modules, optional_packages())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


def test_modules_that_need_an_extra_need_only_that_one() -> None:
    for module, extra in NEEDS_EXTRA.items():
        blocked = [name for name in optional_packages() if name not in extras()[extra]]
        result = import_with_blocked([module], blocked)
        assert result.returncode == 0, result.stderr


def test_vlmcc_help_plan_and_data_help_without_optional_packages() -> None:
    """The CLI itself (only the selected command's module is imported), with every optional package blocked."""
    blocked = optional_packages()
    for argv in (["--help"], ["plan", "--config", "recipes/config.yaml"], ["data", "convert", "--help"]):
        script = textwrap.dedent(
            f"""
            import importlib.abc, sys
            class Blocker(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] in {blocked!r}:
                        raise ImportError(f"core imported optional package {{name!r}}")
            sys.meta_path.insert(0, Blocker())
            from vlm_capcurriculum.cli import main
            sys.exit(main({argv!r}))
            """
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=REPO)
        assert result.returncode == 0, (argv, result.stderr)
        assert "usage: vlmcc" in result.stdout or "curriculum plan" in result.stdout


def test_a_data_command_without_its_extra_names_the_extra(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Blocker(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "aiohttp":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Blocker())
        from vlm_capcurriculum.cli import main
        sys.exit(main(["data", "passk", "--input", "in.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                       "--model", "m", "--output", {str(tmp_path / "out.jsonl")!r}]))
        """
    )
    (tmp_path / "in.jsonl").write_text('{{"problem": "1+1?", "answer": "2", "capability": "text_reasoning"}}\\n')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'vlm-capcurriculum[data]'" in lines[0], result.stderr
