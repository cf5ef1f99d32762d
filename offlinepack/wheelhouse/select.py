"""Pick, for each locked package, the one file the target installs: its best wheel, else the sdist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin
from urllib.request import pathname2url

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.pylock import Package, PackageSdist, PackageWheel
from packaging.tags import parse_tag
from packaging.utils import parse_wheel_filename
from packaging.version import Version

from offlinepack.errors import raise_if_problems
from offlinepack.kernel_target import Target
from offlinepack.pylock import LockFile, best_tags


@dataclass(frozen=True, kw_only=True, slots=True)
class PlannedFile:
    """One file to fetch: a wheel to ship as is, or an sdist to build into a wheel."""

    package: str  # name as in the lock
    version: str
    kind: Literal["wheel", "sdist"]
    filename: str
    # http(s) or file URL (relative paths resolved against the lock's folder); None: a portable lock's bare
    # file name with no such file next to the lock, to be looked up on the package index
    url: str | None
    sha256: str
    size: int | None
    optional: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    files: tuple[PlannedFile, ...]
    skipped: tuple[str, ...]  # packages whose marker is false for the target


def _source_url(lock: LockFile, url: str | None, path: str | None) -> str | None:
    """A file next to the lock first (works offline), then the lock's URL, else None (look it up)."""
    if path:
        resolved = (lock.path.parent / path).resolve()  # PEP 751: relative to the lock's folder
        if resolved.is_file():
            return urljoin("file:", pathname2url(str(resolved)))
    return url


def _marker_matches(package: Package, target: Target) -> bool:
    if package.marker is None:
        return True
    environment = dict(target.markers, extras=frozenset(), dependency_groups=frozenset())
    return package.marker.evaluate(environment, context="lock_file")


def _rank(wheel: PackageWheel, ranks: dict[str, int]) -> int | None:
    found = [ranks[str(tag)] for tag in parse_wheel_filename(wheel.filename)[3] if str(tag) in ranks]
    return min(found) if found else None


def plan_files(lock: LockFile, target: Target) -> Plan:
    """Every problem (no file for the target, unsupported source, wrong Python) is raised at once."""
    ranks: dict[str, int] = {}
    for rank, tag in enumerate(target.tags):
        for expanded in parse_tag(tag):  # tag files may hold compressed sets like py2.py3-none-any
            ranks.setdefault(str(expanded), rank)
    problems: list[str] = []
    files: list[PlannedFile] = []
    skipped: list[str] = []
    python = Version(target.python_version)
    spec = lock.pylock.requires_python
    if spec and not spec.contains(python, prereleases=True):
        problems.append(f"{lock.path}: requires-python {spec}: the lock is for another Python than target "
                        f"{target.name}'s {target.python_version}")
    for index, package in enumerate(lock.pylock.packages):
        where = f"packages[{index}] {package.name}"
        version = str(package.version) if package.version else "?"
        try:
            if not _marker_matches(package, target):
                skipped.append(package.name)
                continue
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as error:
            problems.append(f"{where}: cannot evaluate marker {package.marker} for the target: {error}")
            continue
        if package.requires_python and not package.requires_python.contains(python, prereleases=True):
            problems.append(f"{where} {version} requires Python {package.requires_python}; "
                            f"the target has {target.python_version}")
            continue
        if package.vcs or package.directory or package.archive:
            problems.append(f"{where}: vcs, directory and archive sources are not supported; "
                            "lock it from an index so it has wheels or an sdist")
            continue
        ranked = [(r, w) for w in package.wheels or [] if (r := _rank(w, ranks)) is not None]
        chosen: PackageWheel | PackageSdist | None = min(ranked, key=lambda rw: rw[0])[1] if ranked else package.sdist
        if chosen is None:
            wheel_tags = sorted({str(t) for w in package.wheels or [] for t in parse_wheel_filename(w.filename)[3]})
            problems.append(
                f"no file of {package.name} {version} installs on target {target.name}: the lock has wheels for "
                f"{', '.join(wheel_tags) or 'nothing'} and no sdist; the target's best tags: {best_tags(target.tags)}"
            )
            continue
        if chosen.url is None and chosen.path and ("/" in chosen.path or "\\" in chosen.path):
            local = (lock.path.parent / chosen.path).resolve()
            if not local.is_file():  # a local file (--find-links), not a bare name to look up on the index
                problems.append(f"{where}: {chosen.filename}: no such file {local} (the lock names a local file: "
                                "put it back, or lock again)")
                continue
        sha256 = chosen.hashes.get("sha256")
        if not sha256:
            problems.append(f"{where}: {chosen.filename} has no sha256 hash in the lock "
                            f"(has: {', '.join(chosen.hashes) or 'none'})")
            continue
        files.append(PlannedFile(
            package=package.name,
            version=version,
            kind="wheel" if isinstance(chosen, PackageWheel) else "sdist",
            filename=chosen.filename,
            url=_source_url(lock, chosen.url, chosen.path),
            sha256=sha256.lower(),
            size=chosen.size,
            optional=lock.is_optional(package.name),
        ))
    raise_if_problems(problems, f"{lock.path}: {len(problems)} package(s) cannot be served for target {target.name}",
                      hint=f"lock again for this target: `offlinepack lock REQ... --target {target.name} "
                           f"-o {lock.path}`"
                           f"{' (lock made for ' + repr(lock.target_name) + ')' if lock.target_name else ''}")
    return Plan(files=tuple(files), skipped=tuple(skipped))
