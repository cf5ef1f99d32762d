"""Will offlinepack itself run in the kernel? Its own requirements against what the kernel has plus the lock.

bootstrap installs offlinepack's wheel with --no-deps (the kernel's stack must not move), so what
`offlinepack doctor`/`run` import in the kernel has to be there already or be in the lock. A gap
found here is a warning at build time instead of an ImportError in a notebook with the internet off.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack.kernel_target import Target
from offlinepack.kernel_target.requirements import applicable_requirements

KERNEL_EXTRAS = ("", "run")  # core + what `offlinepack run` needs; torch is the kernel's own, never listed
# core dependencies that only `offlinepack lock` uses on the user's machine (imported there, never in the kernel);
# runtime/bootstrap.py's MACHINE_ONLY_DEPENDENCIES says the same (a test keeps them equal)
MACHINE_ONLY = ("uv",)


def own_requirements(dist_name: str = "offlinepack") -> tuple[str, ...]:
    """Requires-Dist of the installed offlinepack; empty when it is not installed (then nothing is checked)."""
    try:
        return tuple(metadata.requires(dist_name) or ())
    except metadata.PackageNotFoundError:
        return ()


def runtime_gaps(target: Target, shipped: Mapping[str, str], requirements: Iterable[str] | None = None) -> list[str]:
    """One line per requirement of offlinepack's kernel side that neither the target nor the lock satisfies.

    `shipped`: canonical name -> version of what the wheelhouse carries.
    """
    installed = {dist.key: dist.version for dist in target.installed}
    gaps: list[str] = []
    texts = own_requirements() if requirements is None else requirements
    for requirement in applicable_requirements(texts, target.markers, KERNEL_EXTRAS):
        key = canonicalize_name(requirement.name)
        if key in MACHINE_ONLY:
            continue
        where, version = ("the wheelhouse", shipped[key]) if key in shipped else ("the target", installed.get(key))
        if version is None:
            gaps.append(f"offlinepack needs {requirement.name}{requirement.specifier} in the kernel, but target "
                        f"{target.name} does not have it and the lock does not ship it: add `{requirement.name}` "
                        "to your requirements and lock again")
            continue
        try:
            ok = requirement.specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            continue
        if not ok:
            gaps.append(f"offlinepack needs {requirement.name}{requirement.specifier}; {where} has {version}")
    return gaps
