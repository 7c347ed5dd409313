"""Run a composed recipe on the backend it selects: ``backend.launcher`` is an import path
``"package.module:function"``, so adding a backend never touches the others.

Before that, the installed packages are checked for what ``pip check`` misses: a transformers >= 5.11 install
leaves ``kernels`` behind when an extra downgrades transformers (verl 0.9.1 pins ``<5.11``); transformers 5.10
then imports it and fails, and ``pip check`` is silent because the older transformers names ``kernels`` only in an
extra.
"""

from __future__ import annotations

import importlib
import importlib.util
from importlib import metadata
from typing import Protocol

from omegaconf import DictConfig
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version


class LaunchError(ValueError):
    """The recipe selects no backend, or a launcher that cannot be imported."""


class Launcher(Protocol):
    """What ``backend.launcher`` names."""

    def __call__(self, config: DictConfig, *, dry_run: bool) -> int:
        """Train the recipe (or, with ``dry_run``, build the real backend config and data pipeline, print the
        plan and stop before any model is loaded). Returns the process exit status."""
        ...


# The framework package each bundled backend imports, and how to install it (README, Install).
BACKEND_PACKAGES: dict[str, tuple[str, str]] = {
    "trl": ("trl", "pip install torch==2.13.0 (CPU; or your CUDA build), then pip install 'vlm-capcurriculum[trl]'"),
    "verl": ("verl", "pip install 'vlm-capcurriculum[verl]' (in its own venv, see the README's Install section)"),
    "easyr1": (
        "verl",
        "install EasyR1 from its repository (its package is named verl), see docs/integrations/easyr1.md",
    ),
}


# (package that breaks, the package whose optional requirement on it decides which versions work)
KNOWN_LEFTOVERS = (("kernels", "transformers"),)


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def leftover_problems() -> list[str]:
    """One line per installed package that its user's installed version does not accept (with the fix)."""
    problems = []
    for name, user in KNOWN_LEFTOVERS:
        version, user_version = _installed(name), _installed(user)
        if version is None or user_version is None:
            continue
        specifiers = []
        for line in metadata.requires(user) or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.name.lower() == name:
                specifiers.append(requirement.specifier)
        try:
            accepted = all(spec.contains(Version(version), prereleases=True) for spec in specifiers)
        except InvalidVersion:
            continue
        if specifiers and accepted:
            continue
        wanted = f" (it accepts {name}{specifiers[0]})" if specifiers and str(specifiers[0]) else ""
        problems.append(
            f"{name} {version} is installed but {user} {user_version} does not work with it{wanted}; it is "
            f"probably left over from a newer {user} that another extra downgraded: pip uninstall -y {name}"
        )
    return problems


def check_backend_installed(name: str) -> None:
    """One line naming the missing framework of a bundled backend, and a known-bad leftover package."""
    package, install = BACKEND_PACKAGES.get(name, (None, ""))
    if package is not None and importlib.util.find_spec(package) is None:
        raise LaunchError(f"backend {name!r} needs the {package!r} package, which is not installed: {install}")
    problems = leftover_problems()
    if problems:
        raise LaunchError(problems[0])


def run_recipe(config: DictConfig, *, dry_run: bool = False) -> int:
    """Hand the composed recipe to the launcher named by ``config.backend.launcher``."""
    backend = config.get("backend")
    if isinstance(backend, str):  # `+backend=trl` on a config without the backend group sets a plain string
        raise LaunchError(
            f"backend is the plain value {backend!r}, not a backend config: this config has no `backend` group to "
            f"select from. Compose your run from the recipe instead: vlmcc train --config recipes/config.yaml "
            f"backend={backend} (your curriculum as recipes/curriculum/<name>.yaml, selected with curriculum=<name>)"
        )
    if not backend or not backend.get("launcher"):
        raise LaunchError(
            "the config selects no backend: add backend=<name> (a file in recipes/backend/) or a "
            "backend.launcher: 'package.module:function' key"
        )
    target = str(backend.launcher)
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise LaunchError(f"backend.launcher {target!r} must look like 'package.module:function'")
    name = backend.get("name", module_name)
    check_backend_installed(str(name))
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise LaunchError(
            f"backend {name!r}: cannot import {module_name} ({err}); is the backend's framework installed? "
            "(see the README: pip install -e '.[verl]' / '.[trl]', EasyR1 from its repository)"
        ) from err
    launcher = getattr(module, function_name, None)
    if not callable(launcher):
        raise LaunchError(f"backend {name!r}: {module_name} has no function {function_name!r}")
    return int(launcher(config, dry_run=dry_run) or 0)
