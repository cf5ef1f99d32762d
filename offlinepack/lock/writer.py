"""Turn uv's resolution into the offlinepack pylock.toml (PEP 751) and write it atomically.

What the file holds (contract 2, read by `offlinepack build` with packaging.pylock):
- `[[packages]]`: only what the target lacks; wheels filtered to the target's own tags (an sdist is
  kept only when no wheel fits); every file has `url` (remote) or absolute `path` (local), and
  `hashes.sha256`, plus `size` when known;
- portable locks (`--portable`) write index files as a bare relative `path` (the file name) instead of
  their `url`, and set `[tool.offlinepack].files-from-index = true`: build looks them up on the index;
- `[tool.offlinepack]`: `target`, `approximate`, `provided` (held distributions the resolution needs,
  with the target's versions), `optional`, `replaced`, `requested`, `notices`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.pylock import Pylock, PylockValidationError
from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from offlinepack.atomic import write_text_atomically
from offlinepack.errors import OfflinepackError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True, kw_only=True, slots=True)
class LockedFile:
    filename: str
    url: str | None
    path: str | None
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


def _file(entry: Mapping[str, Any], kind: str, problems: list[str], package: str) -> LockedFile | None:
    url, path = entry.get("url"), entry.get("path")
    if isinstance(url, str) and url.startswith("file://"):
        url, path = None, unquote(urlparse(url).path)
    location = url or path or ""
    filename = unquote(Path(urlparse(location).path).name) or entry.get("name")
    sha256 = (entry.get("hashes") or {}).get("sha256")
    if not sha256:
        problems.append(f"{package}: no sha256 for {filename} (the index gave none)")
        return None
    size = entry.get("size")
    if size is None and path:
        try:
            size = Path(path).stat().st_size
        except OSError:
            size = None
    return LockedFile(filename=filename, url=url, path=path, sha256=sha256, size=size, kind=kind)


def wheel_fits(filename: str, tags: frozenset[str]) -> bool:
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return any(str(tag) in tags for tag in wheel_tags)


def select_files(
    package: Mapping[str, Any], target_tags: Iterable[str], problems: list[str]
) -> tuple[LockedFile, ...]:
    """The files of one uv package that install on the target: fitting wheels, else its sdist."""
    tags = frozenset(target_tags)
    name = f"{package['name']} {package.get('version', '')}".strip()
    wheels = []
    for entry in package.get("wheels", []):
        locked = _file(entry, "wheel", problems, name)
        if locked and wheel_fits(locked.filename, tags):
            wheels.append(locked)
    if isinstance(package.get("archive"), Mapping):
        # A direct-URL requirement: written as a plain wheel or sdist so `offlinepack build` treats it like
        # any other file (same hash check, same tag check).
        entry = package["archive"]
        location = entry.get("url") or entry.get("path") or ""
        kind = "wheel" if unquote(urlparse(location).path).endswith(".whl") else "sdist"
        locked = _file(entry, kind, problems, name)
        if locked and (kind == "sdist" or wheel_fits(locked.filename, tags)):
            wheels.append(locked)
    if wheels:
        return tuple(wheels)
    if isinstance(package.get("sdist"), Mapping):
        locked = _file(package["sdist"], "sdist", problems, name)
        return (locked,) if locked else ()
    return ()


def best_tags(target_tags: Sequence[str], count: int = 3) -> str:
    return ", ".join(target_tags[:count])


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        if all(isinstance(v, Mapping) for v in value) or len(value) > 4:
            return "[\n" + "".join(f"    {_toml(v)},\n" for v in value) + "]"
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else json.dumps(key)


def _file_table(file: LockedFile, portable: bool) -> dict[str, Any]:
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


def render_pylock(
    packages: Sequence[LockedPackage], *, environments: Sequence[str], requires_python: str,
    tool: Mapping[str, Any], portable: bool = False,
) -> str:
    lines = ['lock-version = "1.0"', f"environments = {_toml(list(environments))}",
             f"requires-python = {_toml(requires_python)}", 'created-by = "offlinepack"', ""]
    if not packages:
        # PEP 751 requires the key: a lock whose requirements the target already satisfies ships nothing.
        lines += ["packages = []", ""]
    for package in sorted(packages, key=lambda p: p.name):
        lines += ["[[packages]]", f"name = {_toml(package.name)}", f"version = {_toml(package.version)}"]
        wheels = [_file_table(f, portable) for f in package.files if f.kind == "wheel"]
        if wheels:
            lines.append(f"wheels = {_toml(wheels)}")
        for file in package.files:
            if file.kind == "sdist":
                lines.append(f"sdist = {_toml(_file_table(file, portable))}")
        lines.append("")
    lines.append("[tool.offlinepack]")
    lines += [f"{_key(k)} = {_toml(v)}" for k, v in tool.items()]
    return "\n".join(lines) + "\n"


def validate_pylock(text: str, source: str = "pylock.toml") -> Pylock:
    try:
        return Pylock.from_dict(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, PylockValidationError) as error:
        raise OfflinepackError(f"{source}: invalid lock: {error}") from None


def write_atomically(text: str, path: Path) -> None:
    """A good existing lock is never half-replaced."""
    write_text_atomically(path, text, hint="pass -o with a file in a folder you can write to (the old lock is kept)")


def target_environment_marker(markers: Mapping[str, str]) -> str:
    """The kernels this lock is for, as a PEP 508 marker (pylock `environments`)."""
    keys = ("python_version", "sys_platform", "platform_machine", "implementation_name")
    return " and ".join(f'{key} == "{markers[key]}"' for key in keys if markers.get(key))
