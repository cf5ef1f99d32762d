"""`offlinepack.json` (contract 3, read by bootstrap.py and doctor in the kernel) and the size report."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offlinepack import __version__
from offlinepack.kernel_target import Target
from offlinepack.pylock import LOCK_NAME, ProvidedDistribution

FORMAT = "offlinepack-wheelhouse"
FORMAT_VERSION = 1
MANIFEST_NAME = "offlinepack.json"
METADATA_NAME = "dataset-metadata.json"
BOOTSTRAP_NAME = "bootstrap.py"
MANIFEST_TAGS = 20  # enough for bootstrap to check the kernel matches; the full list is in the target


@dataclass(frozen=True, kw_only=True, slots=True)
class WheelhouseFile:
    """One file of a package in the wheelhouse; `path` is relative to the wheelhouse folder."""

    package: str
    version: str
    path: str
    sha256: str
    size: int
    optional: bool
    origin: str  # "downloaded" | "cached" | "built" | "self"


@dataclass(frozen=True, kw_only=True, slots=True)
class SizeRow:
    package: str
    version: str
    size: int
    share: float  # of the total


@dataclass(frozen=True, kw_only=True, slots=True)
class SizeReport:
    rows: tuple[SizeRow, ...]  # largest first
    total: int
    largest: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "largest": self.largest,
                "packages": [{"name": r.package, "version": r.version, "size": r.size} for r in self.rows]}


def size_report(files: Sequence[WheelhouseFile]) -> SizeReport:
    by_package: dict[tuple[str, str], int] = {}
    for f in files:
        by_package[(f.package, f.version)] = by_package.get((f.package, f.version), 0) + f.size
    total = sum(by_package.values())
    rows = sorted((SizeRow(package=p, version=v, size=s, share=s / total if total else 0.0)
                   for (p, v), s in by_package.items()), key=lambda r: (-r.size, r.package))
    return SizeReport(rows=tuple(rows), total=total, largest=rows[0].package if rows else None)


def manifest(target: Target, files: Sequence[WheelhouseFile], provided: Sequence[ProvidedDistribution],
             created: _dt.datetime | None = None) -> dict[str, Any]:
    created = created or _dt.datetime.now(_dt.timezone.utc)
    packages: dict[tuple[str, str], dict[str, Any]] = {}
    for f in files:
        entry = packages.setdefault((f.package, f.version), {
            "name": f.package, "version": f.version, "optional": f.optional, "files": []})
        entry["files"].append({"path": f.path, "sha256": f.sha256, "size": f.size})
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": created.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "offlinepack_version": __version__,
        "target": {
            "name": target.name,
            "implementation": target.implementation,
            "python_version": target.python_version,
            "approximate": target.approximate,
            "tags": list(target.tags[:MANIFEST_TAGS]),
        },
        "packages": list(packages.values()),
        "provided": [{"name": p.name, "version": p.version} for p in provided],
        "lock": LOCK_NAME,
    }
