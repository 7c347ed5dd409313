"""Import EasyR1's configuration on a machine without vLLM, using only EasyR1's own code.

``verl.trainer.config`` imports ``verl.workers.config``, which does ``from .rollout import RolloutConfig``; the
package ``verl/workers/rollout/__init__.py`` also imports ``vllm_rollout_spmd``, which imports vLLM. The config
itself (``verl/workers/rollout/config.py``) is a plain dataclass. So where vLLM is missing (a laptop doing
``--dry-run``, the CPU test lane) we register the ``verl.workers.rollout`` package *without running its
``__init__``*, load its real ``config`` submodule, and expose ``RolloutConfig``. Nothing is faked: no vLLM
stand-in exists, and every other name of that package raises an error saying why.

Where vLLM is importable this does nothing at all, so a training machine imports EasyR1 unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

ROLLOUT_PACKAGE = "verl.workers.rollout"
# What `verl/workers/rollout/__init__.py` exports besides RolloutConfig, and its vLLM submodule.
_VLLM_NAMES = frozenset({"vLLMRollout", "vllm_rollout_spmd"})
CONFIG_ONLY_MARKER = "__vlmcc_config_only__"


class VLLMUnavailableError(ImportError):
    """EasyR1's rollout was asked for in a process that imported EasyR1's config without vLLM."""


def _vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _config_only_getattr(name: str) -> object:
    message = (
        f"`{ROLLOUT_PACKAGE}.{name}` is not available: vLLM is not installed, so vlm-capcurriculum imported "
        f"only EasyR1's rollout *config* in this process (see vlm_capcurriculum/integrations/easyr1/vllm_free.py). "
        "Rollout needs vLLM: install it (GPU machine) to train."
    )
    if name in _VLLM_NAMES:
        raise VLLMUnavailableError(message)
    raise AttributeError(message)


def is_config_only() -> bool:
    """True when this process holds the config-only ``verl.workers.rollout`` package."""
    module = sys.modules.get(ROLLOUT_PACKAGE)
    return bool(module is not None and getattr(module, CONFIG_ONLY_MARKER, False))


def allow_config_import_without_vllm() -> bool:
    """Make ``import verl.trainer.config`` work without vLLM; returns True when the config-only path was taken.

    No-op (False) when vLLM is importable or when ``verl.workers.rollout`` is already imported.
    """
    if _vllm_installed() or ROLLOUT_PACKAGE in sys.modules:
        return False
    spec = importlib.util.find_spec(ROLLOUT_PACKAGE)  # imports the (light) parents `verl`, `verl.workers`
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"`{ROLLOUT_PACKAGE}` is not a package in the installed EasyR1; cannot import its config")
    package: ModuleType = importlib.util.module_from_spec(spec)  # sets __path__, does not execute __init__
    package.__dict__["__getattr__"] = _config_only_getattr
    setattr(package, CONFIG_ONLY_MARKER, True)
    sys.modules[ROLLOUT_PACKAGE] = package
    try:
        config_module = importlib.import_module(f"{ROLLOUT_PACKAGE}.config")
    except BaseException:
        del sys.modules[ROLLOUT_PACKAGE]
        raise
    package.RolloutConfig = config_module.RolloutConfig  # type: ignore[attr-defined]
    sys.modules["verl.workers"].rollout = package  # as a finished import of the package would
    return True
