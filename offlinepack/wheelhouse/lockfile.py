"""Read a pylock.toml (PEP 751, contract 2) and write the wheelhouse's rewritten copy.

Reading goes through `packaging.pylock` so validation errors read exactly like packaging's
(`Unexpected type bool (expected int) in 'packages[0].wheels[0].size'`). Writing uses a small
TOML emitter for the subset a lock needs: there is no TOML writer in the standard library.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from offlinepack.errors import OfflinepackError, not_utf8

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

# imagecodecs only adds faster/extra TIFF codecs: a kernel can fall back to Pillow without it.
DEFAULT_OPTIONAL = ("imagecodecs",)


@dataclass(frozen=True, kw_only=True, slots=True)
class ProvidedDistribution:
    name: str
    version: str


@dataclass(frozen=True, kw_only=True, slots=True)
class LockFile:
    """A validated lock plus offlinepack's own `[tool.offlinepack]` table."""

    path: Path
    raw: Mapping[str, Any]  # the decoded TOML, kept for the rewrite
    pylock: Pylock
    provided: tuple[ProvidedDistribution, ...]
    target_name: str | None
    optional: frozenset[str]  # canonical names

    def is_optional(self, name: str) -> bool:
        return canonicalize_name(name) in self.optional


_RELOCK = "the file is damaged or cut short: write it again with `offlinepack lock REQ... --target T -o pylock.toml`"


def read_lock(path: Path) -> LockFile:
    """Parse and validate `path`; every problem in `[tool.offlinepack]` is reported at once."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise OfflinepackError(f"cannot read lock file {path}: {error.strerror}",
                               hint="pass the pylock.toml that `offlinepack lock` wrote") from None
    except UnicodeDecodeError as error:
        raise OfflinepackError(not_utf8(path, error), hint=_RELOCK) from None
    except tomllib.TOMLDecodeError as error:
        raise OfflinepackError(f"{path}: not valid TOML ({error})", hint=_RELOCK) from None
    try:
        pylock = Pylock.from_dict(raw)
    except PylockValidationError as error:
        raise OfflinepackError(
            f"{path}: not a valid pylock.toml: {error}",
            hint="write a lock with `offlinepack lock REQUIREMENTS --target T -o pylock.toml`",
        ) from None
    tool = raw.get("tool", {}).get("offlinepack", {})
    problems: list[str] = []
    if not isinstance(tool, Mapping):
        problems.append(f"{path}: tool.offlinepack: expected a table, got {type(tool).__name__}")
        tool = {}
    provided: list[ProvidedDistribution] = []
    provided_raw = tool.get("provided", [])
    if not isinstance(provided_raw, list):
        problems.append(f"{path}: tool.offlinepack.provided: expected an array, got {type(provided_raw).__name__}")
        provided_raw = []
    for i, item in enumerate(provided_raw):
        if not (isinstance(item, Mapping) and isinstance(item.get("name"), str) and isinstance(item.get("version"), str)):
            problems.append(f"{path}: tool.offlinepack.provided[{i}]: expected {{name = \"...\", version = \"...\"}}")
            continue
        provided.append(ProvidedDistribution(name=item["name"], version=item["version"]))
    target_name = tool.get("target")
    if target_name is not None and not isinstance(target_name, str):
        problems.append(f"{path}: tool.offlinepack.target: expected a string, got {type(target_name).__name__}")
        target_name = None
    optional_raw = tool.get("optional", list(DEFAULT_OPTIONAL))
    if not (isinstance(optional_raw, list) and all(isinstance(n, str) for n in optional_raw)):
        problems.append(f"{path}: tool.offlinepack.optional: expected an array of package names")
        optional_raw = list(DEFAULT_OPTIONAL)
    if problems:
        raise OfflinepackError(f"{path}: invalid [tool.offlinepack] table", problems=problems,
                               hint="fix those keys, or write the lock again with `offlinepack lock`")
    if tool.get("wheelhouse") is True:
        problems = _escaping_paths(raw, path.parent)
        if problems:
            raise OfflinepackError(f"{path}: a wheelhouse lock whose files are not all inside its folder",
                                   problems=problems,
                                   hint="a wheelhouse's pylock.toml names files beside it; rebuild it with "
                                        "`offlinepack build --force`")
    return LockFile(
        path=path,
        raw=raw,
        pylock=pylock,
        provided=tuple(provided),
        target_name=target_name,
        optional=frozenset(canonicalize_name(n) for n in optional_raw),
    )


def _escaping_paths(raw: Mapping[str, Any], folder: Path) -> list[str]:
    """Each file path in a wheelhouse lock that is absolute or resolves outside `folder`."""
    problems = []
    root = folder.resolve()
    for i, package in enumerate(raw.get("packages", [])):
        entries = [(f"packages[{i}].wheels[{j}].path", w.get("path")) for j, w in enumerate(package.get("wheels", []))]
        if isinstance(package.get("sdist"), Mapping):
            entries.append((f"packages[{i}].sdist.path", package["sdist"].get("path")))
        for where, rel in entries:
            if rel is None:
                continue
            if Path(rel).is_absolute() or "\\" in rel:
                problems.append(f"{where}: {rel!r} is an absolute path; it must name a file in {folder}")
            elif not (folder / rel).resolve().is_relative_to(root):
                problems.append(f"{where}: {rel!r} leaves the wheelhouse folder {folder}")
    return problems


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


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, Mapping) for v in value):
            return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "-_" for c in key) and key.isascii()
    return key if bare else json.dumps(key)


def dumps_lock(data: Mapping[str, Any]) -> str:
    """TOML text in the usual pylock layout: scalars, `[[packages]]`, then `[tool.*]` tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items() if k not in ("packages", "tool")]
    for package in data.get("packages", []):
        lines += ["", "[[packages]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in package.items()]
    for tool_name, table in data.get("tool", {}).items():
        lines += ["", f"[tool.{_key(tool_name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
