"""Build sdist-only packages into wheels on this machine, and refuse compiled ones the target can't use.

The build runs `uv build --wheel` (or `pip wheel --no-deps` when uv is missing) with build
isolation: the build backend comes from the index, which the user's machine can reach. Built
wheels are cached under `<cache>/built/<sdist sha256>/` so a rebuild does not build again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from offlinepack.atomic import move_into_place
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import Target
from offlinepack.pylock import best_tags
from offlinepack.wheelhouse.cache import sha256_file


@dataclass(frozen=True, kw_only=True, slots=True)
class BuiltWheel:
    path: Path
    sha256: str
    size: int
    from_cache: bool


def find_uv() -> str | None:
    try:
        from uv import find_uv_bin  # the `uv` wheel ships its binary and this helper

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


def build_command(sdist: Path, out_dir: Path, uv: str | None = None, python: str | None = None) -> list[str]:
    uv = uv if uv is not None else find_uv()
    if uv:
        return [uv, "build", "--wheel", "--out-dir", str(out_dir), "--python", python or sys.executable, str(sdist)]
    return [python or sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out_dir), str(sdist)]


_NETWORK_SIGNS = ("Failed to fetch", "error sending request", "Connection refused", "Temporary failure in name "
                  "resolution", "Could not find a version that satisfies the requirement", "Network is unreachable")


def run_build(command: Sequence[str], what: str, out_dir: Path) -> Path:
    """Run a wheel build; the error carries the tool's last output lines."""
    env = dict(os.environ, UV_PYTHON_DOWNLOADS="never", PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, env=env, timeout=1800)
    except OSError as error:
        raise OfflinepackError(f"cannot build {what}: {command[0]}: {error.strerror}") from None
    wheels = sorted(out_dir.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        output = (done.stderr or done.stdout).strip()
        tail = " | ".join(output.splitlines()[-5:])
        offline = any(sign in output for sign in _NETWORK_SIGNS)
        hint = ("a build fetches its build backend (setuptools, hatchling, ...) from the package index: build once "
                "with the network; built wheels are cached and a rebuild needs no index" if offline else
                f"run `{' '.join(map(str, command))}` by hand to see the full log")
        raise OfflinepackError(f"building a wheel for {what} failed (exit {done.returncode}): {tail}", hint=hint)
    return wheels[0]


def check_wheel_fits(wheel_name: str, package: str, target: Target) -> None:
    """Pure-Python wheels fit anywhere; a compiled wheel only where the target lists one of its tags."""
    tags = {str(t) for t in parse_wheel_filename(wheel_name)[3]}
    if tags & set(target.tags) or any(t.endswith("-none-any") for t in tags):
        return
    raise OfflinepackError(
        f"{package} is sdist-only and builds a compiled wheel for {', '.join(sorted(tags))}; "
        f"the target needs {best_tags(target.tags)}; build it on a machine matching the target",
        hint="run `offlinepack build` on a Linux machine with the target's Python, or lock a version with wheels",
    )


def build_wheel_from_sdist(sdist: Path, sdist_sha256: str, package: str, target: Target, cache_root: Path,
                           *, python: str | None = None) -> BuiltWheel:
    """A wheel for `sdist`, from the cache when built before; checked against the target either way."""
    folder = cache_root / "built" / sdist_sha256
    cached = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    if cached:
        check_wheel_fits(cached[0].name, package, target)
        return BuiltWheel(path=cached[0], sha256=sha256_file(cached[0]), size=cached[0].stat().st_size,
                          from_cache=True)
    (cache_root / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root / "tmp"))
    try:
        out_dir = work / "out"
        out_dir.mkdir()
        wheel = run_build(build_command(sdist, out_dir, python=python), f"{package} ({sdist.name})", out_dir)
        check_wheel_fits(wheel.name, package, target)  # before caching: a misfit is never kept
        final = move_into_place(wheel, folder / wheel.name, read_only=True)
        return BuiltWheel(path=final, sha256=sha256_file(final), size=final.stat().st_size, from_cache=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
