"""Checks of the installed packages that ``pip check`` does not make, run before a training command.

A transformers >= 5.11 install leaves ``kernels`` behind when an extra downgrades transformers (verl 0.9.1 pins
``<5.11``); transformers 5.10 then imports it and fails. ``pip check`` is silent because the older transformers
names ``kernels`` only in an extra.
"""

from __future__ import annotations

from importlib import metadata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

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
