"""Why a lock cannot keep the target's versions, or why it got an older version than the newest.

Walks the requirement graph of a resolution made WITHOUT holding the target (overrides instead of
constraints), with markers evaluated for the target, and reports every requirement that the
target's installed version does not satisfy, naming both sides:
`dynamic-network-architectures 0.4.4 requires timm<1.0.23; the target has timm 1.0.29`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack.kernel_target import InstalledDistribution
from offlinepack.kernel_target.requirements import applicable_requirements
from offlinepack.lock.inputs import InputRequirement


@dataclass(frozen=True, kw_only=True, slots=True)
class Conflict:
    requirer: str  # "dynamic-network-architectures 0.4.4" or "requirements.in:3"
    requirement: str  # "timm<1.0.23"
    name: str  # the held distribution, as the target names it
    version: str  # the target's version
    chain: tuple[str, ...] = ()  # direct requirement ... requirer, as "name version"

    def __str__(self) -> str:
        return f"{self.requirer} requires {self.requirement}; the target has {self.name} {self.version}"

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


def _applies(marker: Marker | None, env: Mapping[str, str], extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**env, "extra": extra}) for extra in extras | {""})


def _violates(requirement: Requirement, dist: InstalledDistribution) -> bool:
    if requirement.url:
        return True  # a direct URL can never be the kernel's copy
    try:
        return not requirement.specifier.contains(Version(dist.version), prereleases=True)
    except InvalidVersion:
        return False


def find_conflicts(
    *,
    direct: Sequence[InputRequirement],
    resolved: Mapping[str, str],  # key -> version (packages the resolution would install)
    requires: Mapping[str, tuple[str, ...] | None],  # key -> Requires-Dist (None: unknown)
    held: Mapping[str, InstalledDistribution],
    markers: Mapping[str, str],
) -> tuple[Conflict, ...]:
    """Every requirement (direct or of a resolved package) the target's held version breaks."""
    env = dict(markers)
    conflicts: list[Conflict] = []
    parent: dict[str, str | None] = {}
    extras: dict[str, set[str]] = {}
    queue: deque[str] = deque()

    def chain(key: str) -> tuple[str, ...]:
        names: list[str] = []
        node: str | None = key
        while node is not None and len(names) < 50:
            names.append(f"{node} {resolved.get(node, '')}".strip())
            node = parent.get(node)
        return tuple(reversed(names))

    def visit(requirement: Requirement, requirer: str, requirer_key: str | None) -> None:
        child = canonicalize_name(requirement.name)
        if child in held:
            if _violates(requirement, held[child]):
                spec = f"{requirement.name}{requirement.specifier}" if not requirement.url else str(requirement)
                conflicts.append(Conflict(requirer=requirer, requirement=spec, name=held[child].name,
                                          version=held[child].version,
                                          chain=chain(requirer_key) if requirer_key else ()))
            return
        if child not in resolved:
            return
        new_extras = set(requirement.extras) - extras.get(child, set())
        if child not in parent:
            parent[child] = requirer_key
        elif not new_extras:
            return
        extras.setdefault(child, set()).update(requirement.extras)
        queue.append(child)

    for item in direct:
        if _applies(item.requirement.marker, env, set()):
            visit(item.requirement, item.source, None)
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        key = queue.popleft()
        state = (key, frozenset(extras.get(key, set())))
        if state in seen:
            continue
        seen.add(state)
        for requirement in applicable_requirements(requires.get(key) or (), env, extras.get(key, set()) | {""}):
            visit(requirement, f"{key} {resolved[key]}", key)
    unique: dict[str, Conflict] = {}
    for conflict in conflicts:
        unique.setdefault(str(conflict), conflict)
    return tuple(unique.values())

