"""The installed EasyR1: the one version this integration supports, checked once, and its config without vLLM.

EasyR1 has no plugin API: we subclass its classes and read their attributes, so the integration is written against
one EasyR1 commit and refuses any other (:func:`require_easyr1`, called by ``config.py`` before its first EasyR1
import). No hook in EasyR1 either for importing its config without vLLM (docs/integrations/easyr1.md, "vLLM at
import time"). Importing this module imports nothing from EasyR1.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

SUPPORTED_VERSION = "0.3.3.dev0"
SUPPORTED = f"EasyR1 {SUPPORTED_VERSION} (hiyouga/EasyR1 @ b44b311)"
_ROLLOUT = "verl.workers.rollout"


class EasyR1VersionError(RuntimeError):
    """The importable ``verl`` is not the EasyR1 this integration supports."""


class VLLMUnavailableError(ImportError):
    """EasyR1's rollout was asked for in a process that imported EasyR1's config without vLLM."""


def easyr1_location() -> Path | None:
    """The directory of the importable ``verl`` package, without importing it."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def is_easyr1_installed() -> bool:
    """True when ``verl`` is EasyR1 (volcengine verl installs under the same name and has no ``data_loader.py``)."""
    location = easyr1_location()
    return location is not None and (location / "trainer" / "data_loader.py").is_file()


def require_easyr1() -> None:
    """Refuse anything but :data:`SUPPORTED`; then make EasyR1's config importable where vLLM is missing."""
    location = easyr1_location()
    if not is_easyr1_installed():
        found = "no package named `verl` is installed" if location is None else f"`verl` at {location} is not EasyR1"
        raise EasyR1VersionError(
            f"EasyR1 is not installed. The EasyR1 integration needs {SUPPORTED}, which installs as `verl`, but {found} "
            "(volcengine verl uses the same name: use vlm_capcurriculum.integrations.verl for it). "
            "Install EasyR1 from a clone at that commit: `pip install -e /path/to/EasyR1`."
        )
    import verl  # EasyR1's __init__ imports only its py_functional helpers

    version = getattr(verl, "__version__", "unknown")
    if version != SUPPORTED_VERSION:
        raise EasyR1VersionError(
            f"EasyR1 {version} is installed ({location}), but the EasyR1 integration supports {SUPPORTED} only. "
            "Install the supported commit (`git checkout b44b311 && pip install -e .` in the EasyR1 clone)."
        )
    if importlib.util.find_spec("vllm") is not None or _ROLLOUT in sys.modules:
        return
    # Register `verl.workers.rollout` without running its __init__ (which imports vLLM) and load its real `config`.
    package = importlib.util.module_from_spec(importlib.util.find_spec(_ROLLOUT))  # type: ignore[arg-type]

    def missing(name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        raise VLLMUnavailableError(
            f"`{_ROLLOUT}.{name}` is not available: vLLM is not installed, so only EasyR1's rollout config was "
            "imported in this process (vlm_capcurriculum/integrations/easyr1/installed.py). Install vLLM to train."
        )

    package.__getattr__ = missing  # type: ignore[method-assign]
    sys.modules[_ROLLOUT] = package
    try:
        package.RolloutConfig = importlib.import_module(f"{_ROLLOUT}.config").RolloutConfig  # type: ignore[attr-defined]
    except BaseException:
        del sys.modules[_ROLLOUT]
        raise
    sys.modules["verl.workers"].rollout = package  # as a finished import of the package would
