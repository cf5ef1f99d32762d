"""The rehearsal's kernel-like base environment, built once per key and copied into each rehearsal.

Building it (`python -m venv` bootstrapping pip, as Kaggle's Python has pip, plus the target's preinstalled
distributions) takes seconds; copying a cached one takes a fraction of that.

- Where: `<cache dir>/rehearsal-base/<key>/`, the cache dir rule of `build` ($OFFLINEPACK_CACHE, else
  $XDG_CACHE_HOME/offlinepack, else ~/.cache/offlinepack).
- Key: the sha256 of everything the entry is made of (the caller's `inputs`: interpreter and its version,
  the target's preinstalled list, the host distributions linked in), so a changed list makes a new entry.
- Trust: an entry is built in a staging folder, its marker (the listing of every file: size, mtime) written
  last, then renamed into place. An entry without its marker, or whose files no longer match the listing
  (removed, or edited through one of the hard links a copy shares), is removed and rebuilt, never used.
- Copy: hard links where the file system allows (the copy's own writes create new files: pip installs by
  moving new files in, Python writes .pyc by rename), else plain copies. A venv is not relocatable by path:
  its scripts' shebangs, activate scripts and pyvenv.cfg name the folder it was built in. Those few text
  files are rewritten in the copy (as new files, never through a link into the cache). A bind mount of the
  cached venv at its build path would avoid the rewrite but only works inside a mount namespace, and the
  rehearsal's fallback (no namespaces) must run the same venv at the rehearsal's own path.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offlinepack.wheelhouse.cache import default_cache_dir

FORMAT = 1  # bump when the entry's layout changes: old entries then stop matching any key
MARKER = "offlinepack-base.json"
KEEP = 4  # entries kept, most recently used first (one per target and interpreter in practice)
_SHEBANG_MAX = 127  # bytes of a #! line Linux executes
_STALE_BUILD_S = 3600  # a staging folder this old belongs to a build that died


@dataclass(frozen=True, kw_only=True, slots=True)
class BaseCopy:
    info: dict[str, Any]  # what the build function returned (recorded in the marker)
    reused: bool  # False: built now
    entry: Path | None  # the cache entry (None: the cache could not be written, built in place)


def cache_root(environ: Mapping[str, str] = os.environ) -> Path:
    return default_cache_dir(environ) / "rehearsal-base"


def key_of(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"format": FORMAT, **inputs}, sort_keys=True).encode()).hexdigest()[:24]


def _listing(folder: Path) -> dict[str, list[Any]]:
    """relative path -> [size, mtime_ns] of each file, [link target] of each symlink (the marker excluded)."""
    found: dict[str, list[Any]] = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if rel == MARKER:
                continue
            if os.path.islink(path):
                found[rel] = [os.readlink(path)]
            else:
                info = os.stat(path)
                found[rel] = [info.st_size, info.st_mtime_ns]
    return found


def intact(entry: Path) -> dict[str, Any] | None:
    """The entry's marker when the entry is whole and unchanged since it was built, else None."""
    try:
        marker = json.loads((entry / MARKER).read_text())
        return marker if marker.get("files") == _listing(entry) else None
    except (OSError, ValueError, AttributeError):
        return None


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _relocate(folder: Path, old: str, new: str) -> None:
    """Rewrite the venv files that name the folder the entry was built in (shebangs, activate, pyvenv.cfg)."""
    candidates = [p for p in folder.glob("*/bin/*") if p.is_file() and not p.is_symlink()]
    candidates += list(folder.glob("*/pyvenv.cfg"))
    for path in candidates:
        data = path.read_bytes()
        if old.encode() not in data:
            continue
        mode = path.stat().st_mode
        data = data.replace(old.encode(), new.encode())
        head, newline, rest = data.partition(b"\n")
        if head.startswith(b"#!/") and len(head) > _SHEBANG_MAX:
            # the kernel refuses a longer #! line: run the interpreter through sh, as pip writes such scripts
            interpreter = head[2:].decode().strip()
            data = f"#!/bin/sh\n'''exec' '{interpreter}' \"$0\" \"$@\"\n' '''\n".encode() + rest
        path.unlink()  # a new file: the old one may be a hard link into the cache
        path.write_bytes(data)
        os.chmod(path, mode)


def _place(entry: Path, marker: dict[str, Any], destination: Path) -> None:
    for name in marker["top"]:
        target = destination / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        source = entry / name
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(source), str(target))
    _relocate(destination, marker["built_in"], str(destination))


def _build(folder: Path, inputs: Mapping[str, Any], build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    info = build(folder)
    marker = {"format": FORMAT, "inputs": dict(inputs), "info": info, "built_in": str(folder),
              "top": sorted(p.name for p in folder.iterdir()), "files": _listing(folder)}
    (folder / MARKER).write_text(json.dumps(marker, indent=1))  # last: its presence means the build finished
    return marker


def _prune(root: Path, keep: Path) -> None:
    entries = []
    try:
        listing = list(root.iterdir())
    except OSError:
        return
    for path in listing:
        try:
            if path.name.startswith(".build-"):
                if time.time() - path.stat().st_mtime > _STALE_BUILD_S:
                    shutil.rmtree(path, ignore_errors=True)
            elif path != keep:
                entries.append(((path / MARKER).stat().st_mtime if (path / MARKER).exists() else 0, path))
        except OSError:
            continue
    for _, path in sorted(entries, reverse=True)[KEEP - 1:]:
        shutil.rmtree(path, ignore_errors=True)


def copy_base(destination: Path, inputs: Mapping[str, Any], build: Callable[[Path], dict[str, Any]],
              environ: Mapping[str, str] = os.environ) -> BaseCopy:
    """Put the base environment for `inputs` into `destination` (its top-level entries replaced), from the
    cache when an intact entry exists, else built by `build(folder)` (which returns facts to record) and
    cached. Without a writable cache it is built in `destination` directly."""
    destination.mkdir(parents=True, exist_ok=True)
    root = cache_root(environ)
    entry = root / key_of(inputs)
    marker = intact(entry) if entry.is_dir() else None
    reused = marker is not None
    if marker is None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        except OSError:
            with tempfile.TemporaryDirectory(prefix=".base-", dir=destination) as tmp:
                marker = _build(Path(tmp), inputs, build)
                _place(Path(tmp), marker, destination)
            return BaseCopy(info=marker["info"], reused=False, entry=None)
        try:
            os.chmod(staging, 0o755)
            marker = _build(staging, inputs, build)
            # a damaged entry (no marker, or changed files) is never trusted; an intact one is another
            # rehearsal's, which may be copying from it right now: leave it and use it
            if entry.exists() and intact(entry) is None:
                shutil.rmtree(entry)
            try:
                os.rename(staging, entry)
            except OSError:  # another rehearsal put the same entry in place first
                if intact(entry) is None:
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker = intact(entry)
        if marker is None:
            raise OSError(f"the rehearsal's base environment {entry} changed while it was being written")
    try:
        os.utime(entry / MARKER)  # most recently used: kept by _prune
    except OSError:  # a shared read-only cache: reading it is all this needs
        pass
    _place(entry, marker, destination)
    _prune(root, entry)
    return BaseCopy(info=marker["info"], reused=reused, entry=entry)
