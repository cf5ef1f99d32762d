"""The wheelhouse's copy of the lock: each kept package points at its one wheel beside it.

Reading and writing pylock.toml is offlinepack/pylock.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from offlinepack.pylock import LockFile


def rewrite_lock(lock: LockFile, files: Mapping[str, tuple[str, str, int]], extra_packages: list[dict[str, Any]],
                 created_by: str) -> dict[str, Any]:
    """The wheelhouse's lock: each kept package points at its one wheel by relative `path`.

    `files` maps a canonical package name to (file name, sha256, size); packages not in it (marker
    false for the target) are dropped, because the wheelhouse has nothing to install for them.
    """
    out: dict[str, Any] = {}
    for key, value in lock.raw.items():
        if key not in ("packages", "tool"):
            out[key] = value
    out["created-by"] = created_by
    packages = []
    for entry in lock.raw.get("packages", []):
        name = canonicalize_name(entry["name"])
        if name not in files:
            continue
        filename, sha256, size = files[name]
        # Index, sdist and URLs are dropped: offline, only the file next to the lock counts.
        kept = {k: v for k, v in entry.items() if k not in ("wheels", "sdist", "index", "archive")}
        kept["wheels"] = [{"name": filename, "path": filename, "size": size, "hashes": {"sha256": sha256}}]
        packages.append(kept)
    out["packages"] = packages + extra_packages
    tool = dict(lock.raw.get("tool", {}))
    # every file now sits next to this lock: nothing is to be looked up on an index any more
    own = {k: v for k, v in tool.get("offlinepack", {}).items() if k != "files-from-index"}
    tool["offlinepack"] = dict(own, wheelhouse=True)
    out["tool"] = tool
    try:  # never ship a lock pip or uv would refuse
        Pylock.from_dict(out)
    except PylockValidationError as error:  # pragma: no cover - a bug, not user input
        raise AssertionError(f"rewritten lock is invalid: {error}") from error
    return out
