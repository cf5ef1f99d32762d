"""A test kernel's Target and hand-written pylock.toml files, for the wheelhouse and build tests."""

from __future__ import annotations

import json
from pathlib import Path

from packaging import tags as ptags

from offlinepack.kernel_target import InstalledDistribution, Target
from tests.support.index import LocalIndex
from tests.support.wheels import sha256_of

MANYLINUX = [f"cp312-cp312-manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)]
TAGS = ("cp312-cp312-linux_x86_64", *MANYLINUX, "cp312-abi3-manylinux_2_17_x86_64", "py312-none-any", "py3-none-any")
MARKERS = {
    "implementation_name": "cpython", "implementation_version": "3.12.3", "os_name": "posix",
    "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "6.1",
    "platform_system": "Linux", "platform_version": "#1", "python_full_version": "3.12.3",
    "python_version": "3.12", "sys_platform": "linux",
}


def make_target(tags: tuple[str, ...] = TAGS, name: str = "test-kernel") -> Target:
    return Target(name=name, implementation="cpython", python_version="3.12.3", system="linux", machine="x86_64",
                  libc="glibc", libc_version="2.35", markers=MARKERS, tags=tags, approximate=True)


def cpython_target(full_version: str, installed: dict[str, str] | None = None,
                   requires: dict[str, list[str]] | None = None, name: str = "tiny", abi_suffix: str = "") -> Target:
    """CPython `full_version` on glibc 2.35 x86_64 with its real tag list and markers (the host's Python may
    differ: markers must be the target's), `installed` {name: version} with their Requires-Dist."""
    major, minor = (int(part) for part in full_version.split(".")[:2])
    cp = f"cp{major}{minor}"
    platforms = [f"manylinux_2_{glibc}_x86_64" for glibc in range(35, 16, -1)] + ["linux_x86_64"]
    tags = [*ptags.cpython_tags((major, minor), abis=[cp + abi_suffix], platforms=platforms),
            *ptags.compatible_tags((major, minor), interpreter=cp, platforms=platforms)]
    markers = {"implementation_name": "cpython", "implementation_version": full_version, "os_name": "posix",
               "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
               "platform_system": "Linux", "platform_version": "", "python_full_version": full_version,
               "python_version": f"{major}.{minor}", "sys_platform": "linux"}
    return Target(name=name, implementation="cpython", python_version=full_version, system="linux", machine="x86_64",
                  libc="glibc", libc_version="2.35", markers=markers, tags=tuple(str(t) for t in tags),
                  installed=tuple(InstalledDistribution(name=n, version=v, requires=tuple((requires or {}).get(n, ())))
                                  for n, v in (installed or {}).items()))


def file_url(index: LocalIndex, path: Path) -> str:
    return index.url.replace("/simple/", "/files/") + path.name


def entry(url: str, path: Path, sha: str | None = None) -> str:
    return f'{{url = "{url}", hashes = {{sha256 = "{sha or sha256_of(path)}"}}}}'


def write_lock(path: Path, packages: list[dict], tool: str | None = None) -> Path:
    """A pylock.toml written by hand: each package is {name, version, wheels: [entry...], sdist: entry, marker}."""
    lines = ['lock-version = "1.0"', 'created-by = "tests"', 'requires-python = ">=3.10"']
    for package in packages:
        lines += ["", "[[packages]]", f'name = "{package["name"]}"', f'version = "{package["version"]}"']
        if "marker" in package:
            lines.append(f"marker = {json.dumps(package['marker'])}")
        if "wheels" in package:
            lines.append("wheels = [\n" + "".join(f"  {w},\n" for w in package["wheels"]) + "]")
        if "sdist" in package:
            lines.append(f"sdist = {package['sdist']}")
    lines += ["", "[tool.offlinepack]", 'target = "test-kernel"',
              'provided = [{name = "numpy", version = "2.0.2"}, {name = "torch", version = "2.8.0"}]']
    if tool:
        lines.append(tool)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
