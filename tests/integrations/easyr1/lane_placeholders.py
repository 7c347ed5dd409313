"""Test-only stand-ins for two packages the CPU lane cannot import; never used by the product.

* ``vllm``: GPU-only, so the lane cannot install it, yet ``verl.workers.fsdp_workers`` (hence
  ``verl.trainer.ray_trainer``) imports it at module level. The stand-in lets tests import those *classes*;
  any use of a vLLM name (call, attribute, instance) raises :class:`PlaceholderUsed`.
* ``qwen_vl_utils``: installed, but it imports torchvision at import time, and torchvision has no CPU wheel for
  torch 2.13 on PyPI (the PyPI wheel is a CUDA build that fails to load with a CPU torch). EasyR1 only uses
  ``qwen_vl_utils.vision_process.fetch_video`` (video inputs); images never reach it.

Each finder is installed only when the real package cannot be imported, so a machine with vLLM (or with a
working qwen_vl_utils) always gets the real thing. Python sees the stand-in as installed (``find_spec``
succeeds), which is why tests that need ``installed.py``'s config-only import run in interpreters without it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

MARKER = "__vlmcc_lane_placeholder__"


class PlaceholderUsed(RuntimeError):
    """Test code touched a stand-in for a package that is not installed in the lane."""


class _PlaceholderMeta(type):
    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise PlaceholderUsed(f"{cls.__qualname__} is a lane placeholder: the real package is not installed")

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise PlaceholderUsed(f"{cls.__qualname__}.{name} is a lane placeholder: the real package is not installed")


class _PlaceholderModule(ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        # Any name a module imports from a placeholder is a class that cannot be used (but can be subclassed
        # and used in annotations, as EasyR1's vllm_utils.TensorLoRARequest(LoRARequest) does).
        value = _PlaceholderMeta(name, (), {"__qualname__": f"{self.__name__}.{name}", "__module__": self.__name__})
        setattr(self, name, value)
        return value


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = _PlaceholderModule(spec.name)
        setattr(module, MARKER, True)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__path__ = []  # every placeholder is a package, so any submodule import succeeds


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, top_level: str) -> None:
        self.top_level = top_level

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".")[0] != self.top_level:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=True)


def _importable(name: str) -> bool:
    if importlib.util.find_spec(name) is None:
        return False
    try:
        __import__(name)
    except ImportError:
        for module in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[module]
        return False
    return True


def install(*names: str) -> list[str]:
    """Install stand-ins for those of ``names`` that cannot be imported; returns the ones installed."""
    installed = []
    for name in names:
        if any(isinstance(finder, _Finder) and finder.top_level == name for finder in sys.meta_path):
            continue
        if _importable(name):
            continue
        sys.meta_path.insert(0, _Finder(name))
        installed.append(name)
    return installed
