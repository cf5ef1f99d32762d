"""pylock.toml (PEP 751, contract 2): the one model, reader and writer that `lock` and `wheelhouse` share.

- `lock` writes it (`LockedPackage`/`LockedFile` rendered by `render_packages` + `dumps_pylock`);
- `wheelhouse` reads it (`read_lock`: packaging.pylock validation, so errors read exactly like packaging's,
  `Unexpected type bool (expected int) in 'packages[0].wheels[0].size'`, plus offlinepack's own
  `[tool.offlinepack]` table with every problem named at once), then writes its rewritten copy with
  the same `dumps_pylock`.

File locations: a file has a `url` (remote) or a `path`; a relative `path` is relative to the lock's folder
(PEP 751), which is how a wheelhouse's lock names the wheels beside it and how a portable lock names a
file to be looked up on an index by name and sha256.

The writer is a small emitter for the subset a lock needs (no TOML writer in the standard library, and
the kernel side must not need one): scalars first, then `[[packages]]`, then `[tool.*]` tables.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import canonicalize_name

from offlinepack._compat import tomllib
from offlinepack.errors import OfflinepackError, not_utf8

LOCK_NAME = "pylock.toml"
# imagecodecs only adds faster/extra TIFF codecs: a kernel reads LZW TIFFs with Pillow when it is missing.
DEFAULT_OPTIONAL = ("imagecodecs",)


def best_tags(tags: Sequence[str], count: int = 3) -> str:
    """The target's most preferred tags, for messages about a file that does not fit."""
    return ", ".join(tags[:count])


# --- the model --------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, slots=True)
class LockedFile:
    filename: str
    url: str | None
    path: str | None  # absolute for a local file; a bare file name in a portable lock
    sha256: str
    size: int | None
    kind: str  # "wheel" | "sdist"


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedPackage:
    name: str
    version: str
    files: tuple[LockedFile, ...]

    @property
    def kind(self) -> str:
        return self.files[0].kind if self.files else "none"


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


# --- reading ----------------------------------------------------------------------------------------------

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


def validate_pylock(text: str, source: str = LOCK_NAME) -> Pylock:
    """The lock text as packaging reads it: a lock pip or uv would refuse is never written."""
    try:
        return Pylock.from_dict(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, PylockValidationError) as error:
        raise OfflinepackError(f"{source}: invalid lock: {error}") from None


# --- writing ----------------------------------------------------------------------------------------------

def file_table(file: LockedFile, portable: bool = False) -> dict[str, Any]:
    """One `wheels` entry or `sdist` table."""
    table: dict[str, Any] = {"name": file.filename}
    if portable and file.url:
        # No download address: `offlinepack build` finds the file by name and sha256 on the index it is given
        # (or the machine's configured one), so a committed lock names no host and works behind a mirror.
        table["path"] = file.filename
    elif file.url:
        table["url"] = file.url
    else:
        table["path"] = file.path
    if file.size is not None:
        table["size"] = file.size
    table["hashes"] = {"sha256": file.sha256}
    return table


def package_table(package: LockedPackage, portable: bool = False) -> dict[str, Any]:
    table: dict[str, Any] = {"name": package.name, "version": package.version}
    wheels = [file_table(f, portable) for f in package.files if f.kind == "wheel"]
    if wheels:
        table["wheels"] = wheels
    for file in package.files:
        if file.kind == "sdist":
            table["sdist"] = file_table(file, portable)
    return table


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
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if all(isinstance(v, Mapping) for v in value) or len(value) > 4:
            return "[\n" + "".join(f"    {_value(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    bare = key and all(c.isalnum() or c in "-_" for c in key) and key.isascii()
    return key if bare else json.dumps(key)


def dumps_pylock(data: Mapping[str, Any]) -> str:
    """TOML text in the usual pylock layout: scalars, `[[packages]]`, then `[tool.*]` tables."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items() if k not in ("packages", "tool")]
    packages = data.get("packages", [])
    if not packages:
        # PEP 751 requires the key: a lock whose requirements the target already satisfies ships nothing.
        lines += ["", "packages = []"]
    for package in packages:
        lines += ["", "[[packages]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in package.items()]
    for tool_name, table in data.get("tool", {}).items():
        lines += ["", f"[tool.{_key(tool_name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
