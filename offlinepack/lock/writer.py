"""Turn uv's resolution into the offlinepack pylock.toml (PEP 751); the file format is offlinepack/pylock.py.

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

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from offlinepack.pylock import LockedFile, LockedPackage, dumps_pylock, package_table


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


def render_pylock(
    packages: Sequence[LockedPackage], *, environments: Sequence[str], requires_python: str,
    tool: Mapping[str, Any], portable: bool = False,
) -> str:
    return dumps_pylock({
        "lock-version": "1.0", "environments": list(environments), "requires-python": requires_python,
        "created-by": "offlinepack",
        "packages": [package_table(p, portable) for p in sorted(packages, key=lambda p: p.name)],
        "tool": {"offlinepack": dict(tool)},
    })


def target_environment_marker(markers: Mapping[str, str]) -> str:
    """The kernels this lock is for, as a PEP 508 marker (pylock `environments`)."""
    keys = ("python_version", "sys_platform", "platform_machine", "implementation_name")
    return " and ".join(f'{key} == "{markers[key]}"' for key in keys if markers.get(key))
