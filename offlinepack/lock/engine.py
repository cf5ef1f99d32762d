"""Run uv's resolver for a target: `uv pip compile --python-platform/--python-version --format pylock.toml`.

The target's installed distributions are held with two inputs uv already understands:

- a constraint `name==version` for each one, so every requirement on it is checked against the
  kernel's version and uv backtracks to older requirers when needed (the nnunetv2 → timm case);
- a metadata-only stub wheel of that exact name and version in a `--find-links` folder, tagged with
  the target's best tag so uv reads the stub's (empty) dependencies instead of the real package's.
  Without it, holding torch would pull its nvidia-* and triton wheels into the resolution, and local
  versions such as `2.10.0+cu128` (not on the public index) could not be found at all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from offlinepack._compat import tomllib
from offlinepack.errors import OfflinepackError
from offlinepack.hashing import record_hash
from offlinepack.kernel_target import InstalledDistribution, Target


# The manylinux levels `uv pip compile --python-platform` knows (uv 0.8+): pick the highest <= the target's glibc.
_UV_MANYLINUX = ((2, 17), (2, 28), (2, 31), (2, 32), (2, 33), (2, 34), (2, 35), (2, 36), (2, 37), (2, 38),
                 (2, 39), (2, 40))


@dataclass(frozen=True, kw_only=True, slots=True)
class UvPlatform:
    python_platform: str  # "x86_64-manylinux_2_35"
    stub_tag: str  # "cp312-cp312-manylinux_2_35_x86_64": a tag uv ranks first for that platform


@dataclass(frozen=True, kw_only=True, slots=True)
class UvRun:
    ok: bool
    lock: dict[str, Any]  # uv's pylock.toml, decoded (empty when not ok)
    stderr: str

    def cause_lines(self) -> list[str]:
        """uv's error text without blank lines, for messages."""
        return [line.strip() for line in self.stderr.splitlines() if line.strip()]


def find_uv(uv: str | os.PathLike[str] | None = None) -> str:
    """The uv binary: the given one, the `uv` Python package's, or the one on PATH."""
    if uv:
        return str(uv)
    try:
        import uv as uv_package

        return uv_package.find_uv_bin()
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if not found:
        raise OfflinepackError("`offlinepack lock` needs uv and none was found",
                               hint="uv is one of offlinepack's dependencies: reinstall it with "
                                    "`pip install offlinepack` (or put uv on PATH)")
    return found


def uv_platform(target: Target) -> UvPlatform:
    """Map a target to uv's `--python-platform` value and the tag the held stubs carry."""
    arch = target.machine
    if target.system != "linux" or arch not in ("x86_64", "aarch64"):
        raise OfflinepackError(f"target {target.name}: locking supports Linux x86_64/aarch64 targets, "
                               f"not {target.system}-{arch}")
    if target.libc == "musl":
        return UvPlatform(python_platform=f"{arch}-unknown-linux-musl", stub_tag=target.tags[0])
    glibc = tuple(int(x) for x in (target.libc_version or "2.17").split(".")[:2])
    levels = [level for level in _UV_MANYLINUX if level <= glibc]
    if not levels:
        raise OfflinepackError(f"target {target.name}: glibc {target.libc_version} is older than manylinux_2_17",
                               hint="lock for a newer kernel image (snapshot it with `python bootstrap.py snapshot`)")
    major, minor = levels[-1]
    wanted = f"-manylinux_{major}_{minor}_{arch}"
    stub = next((tag for tag in target.tags if tag.endswith(wanted) and "-none-" not in tag), target.tags[0])
    return UvPlatform(python_platform=f"{arch}-manylinux_{major}_{minor}", stub_tag=stub)



def write_stub_wheel(folder: Path, name: str, version: str, tag: str) -> Path:
    """A metadata-only wheel: exact name and version, no dependencies, no code."""
    module = canonicalize_name(name).replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode(),
        f"{info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: offlinepack-stub\nRoot-Is-Purelib: false\nTag: {tag}\n\n"
        .encode(),
    }
    record = "".join(f"{rel},{record_hash(data)},{len(data)}\n" for rel, data in files.items()) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = folder / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for rel, data in files.items():
            archive.writestr(rel, data)
    return path


def holdable(dists: Iterable[InstalledDistribution]) -> list[InstalledDistribution]:
    """Installed distributions with a PEP 440 version (others cannot be expressed to a resolver)."""
    result = []
    for dist in dists:
        try:
            Version(dist.version)
        except InvalidVersion:
            continue
        result.append(dist)
    return result


@dataclass(frozen=True, kw_only=True, slots=True)
class Holds:
    stubs: Path  # the --find-links folder of stub wheels
    constraints: Path  # `name==version` per held distribution
    stub_of: dict[str, Path]  # canonical name -> its stub wheel


def write_holds(folder: Path, dists: Sequence[InstalledDistribution], tag: str) -> Holds:
    """Stub wheels in `folder/stubs` and a constraints file pinning each held distribution exactly."""
    stubs = folder / "stubs"
    stubs.mkdir(parents=True, exist_ok=True)
    stub_of = {dist.key: write_stub_wheel(stubs, dist.name, dist.version, tag) for dist in dists}
    constraints = folder / "held-constraints.txt"
    constraints.write_text("".join(f"{dist.name}=={dist.version}\n" for dist in dists), encoding="utf-8")
    return Holds(stubs=stubs, constraints=constraints, stub_of=stub_of)


def run_compile(
    *,
    uv: str,
    requirements: Path,
    target: Target,
    platform: UvPlatform,
    index_url: str | None = None,
    find_links: Sequence[Path | str] = (),
    constraints: Sequence[Path] = (),
    overrides: Sequence[Path] = (),
    no_deps: bool = False,
    cache_dir: Path | None = None,
    python: str = sys.executable,
) -> UvRun:
    """One `uv pip compile` for the target; uv's own output is returned, never printed."""
    command = [uv, "pip", "compile", str(requirements), "--format", "pylock.toml", "--quiet", "--no-header",
               "--python-platform", platform.python_platform, "--python-version", target.python_version,
               "--no-config", "--color", "never",
               # This interpreter only builds sdists for their metadata; without it uv searches PATH for
               # the target's Python (slow, and it may not exist here). The target comes from the flags above.
               "--python", python, "--no-python-downloads"]
    if index_url:
        command += ["--index-url", index_url]
    for link in find_links:
        command += ["--find-links", str(link)]
    for path in constraints:
        command += ["--constraints", str(path)]
    for path in overrides:
        command += ["--overrides", str(path)]
    if no_deps:
        command.append("--no-deps")
    if cache_dir:
        command += ["--cache-dir", str(cache_dir)]
    # One retry: an unreachable index should fail in seconds, not after uv's default backoff.
    # uv wraps its messages at $COLUMNS: a wide one keeps each on one line for the parser (COLUMNS=60 broke it)
    env = {**os.environ, "UV_HTTP_RETRIES": os.environ.get("UV_HTTP_RETRIES", "1"), "NO_COLOR": "1", "COLUMNS": "10000"}
    for key in ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_CONSTRAINT", "UV_OVERRIDE", "UV_PYTHON"):
        env.pop(key, None)  # only what we pass counts
    process = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if process.returncode != 0:
        return UvRun(ok=False, lock={}, stderr=process.stderr)
    try:
        data = tomllib.loads(process.stdout)
    except tomllib.TOMLDecodeError as error:  # a uv bug, but say so plainly
        raise OfflinepackError(f"uv wrote an unreadable pylock.toml: {error}") from None
    return UvRun(ok=True, lock=data, stderr=process.stderr)


_NETWORK = re.compile(r"(Failed to fetch|error sending request|tcp connect error|dns error|Connection refused|"
                      r"timed out|Could not connect)", re.I)


def network_problem(run: UvRun) -> str | None:
    """The line naming the unreachable URL, when uv failed for lack of network."""
    if run.ok or not _NETWORK.search(run.stderr):
        return None
    lines = run.cause_lines()
    fetch = next((line for line in lines if "Failed to fetch" in line or "Request failed" in line), lines[0])
    root = lines[-1].removeprefix("cause: ") if lines else ""
    return f"{fetch.removeprefix('error: ').removeprefix('cause: ')} ({root})"
