"""Capture the running interpreter as a Target (what `offlinepack snapshot` writes).

`runtime/bootstrap.py snapshot` writes the same format with the standard library only; this
one uses packaging, so its tags are exactly `packaging.tags.sys_tags()`.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from offlinepack.kernel_target.model import InstalledDistribution, Target

if TYPE_CHECKING:  # importlib.metadata is imported when a snapshot is taken, not by `offlinepack targets`
    from importlib import metadata


def install_paths(search_path: Sequence[str] | None = None) -> list[str]:
    """sys.path without folders nested inside another entry (setuptools/_vendor and the like, added at run
    time by an import): what they hold is a package's private copy, not something installed."""
    entries = [os.path.abspath(p or os.curdir) for p in (sys.path if search_path is None else search_path)]
    roots = [e for e in entries if os.path.isdir(e)]
    return [e for e in entries if not any(e != r and e.startswith(r.rstrip(os.sep) + os.sep) and
                                          os.path.basename(r) in ("site-packages", "dist-packages") for r in roots)]


def installed_distributions(dists: Iterable[metadata.Distribution] | None = None) -> tuple[InstalledDistribution, ...]:
    """Name, version and Requires-Dist of every distribution; the first on sys.path wins, like imports."""
    from importlib import metadata

    seen: set[str] = set()
    result: list[InstalledDistribution] = []
    for dist in metadata.distributions(path=install_paths()) if dists is None else dists:
        name, version = dist.metadata["Name"], dist.version
        if not name or not version or canonicalize_name(name) in seen:
            continue
        seen.add(canonicalize_name(name))
        result.append(InstalledDistribution(name=name, version=version, requires=tuple(dist.requires or ())))
    return tuple(sorted(result, key=lambda d: d.key))


def snapshot_current(name: str = "snapshot", description: str = "") -> Target:
    """The running interpreter: marker environment, ordered wheel tags, installed distributions."""
    from packaging import tags as ptags  # here, not at import: `offlinepack targets` never needs them
    from packaging.markers import default_environment

    libc, libc_version = platform.libc_ver()
    markers = default_environment()
    return Target(
        name=name,
        implementation=sys.implementation.name,
        python_version=markers["python_full_version"],
        system=platform.system().lower(),
        machine=platform.machine(),
        libc=libc or None,
        libc_version=libc_version or None,
        markers=dict(markers),
        tags=tuple(str(tag) for tag in ptags.sys_tags()),
        installed=installed_distributions(),
        description=description or f"snapshot of {sys.executable}",
        approximate=False,
    )
