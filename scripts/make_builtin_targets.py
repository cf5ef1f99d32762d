#!/usr/bin/env python3
"""Regenerate the built-in targets (offlinepack/kernel_target/builtin/*.json) from public evidence.

    python scripts/make_builtin_targets.py [--fixtures tests/data/fixtures]

Evidence (see fixtures/colab-gpu/README.md): Kaggle's GPU image is built FROM Colab's GPU runtime
(Ubuntu 22.04, glibc 2.35), then `pip install`s kaggle_requirements.txt on top. So a built-in is:
Colab's published `pip freeze` + the exact `==` pins of kaggle_requirements.txt (they win: pip
installs them last). Unpinned Kaggle additions (SimpleITK, ...) are listed in the JSON under
`unpinned_additions`: their versions are unknown, so they are not claimed as installed.
Tags are generated with packaging's own functions for the stated interpreter and glibc.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from unittest import mock

from packaging import tags as ptags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import packaging._manylinux as manylinux

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "offlinepack" / "kernel_target" / "builtin"
GLIBC = (2, 35)  # Ubuntu 22.04 (os-info-gpu.txt)

SNAPSHOT_HINT = (
    "Approximate: Colab's published GPU-runtime pip freeze ({freeze}) plus the exact pins Kaggle's image recipe adds "
    "on top; the real kernel may differ. For an exact target, run `python bootstrap.py snapshot -o kernel.json` "
    "inside the kernel (internet off is fine), download kernel.json, and pass `--target kernel.json`."
)


def linux_tags(python: tuple[int, int], glibc: tuple[int, int], arch: str = "x86_64") -> list[str]:
    """What packaging.tags.sys_tags() gives for CPython `python` on a glibc `glibc` x86_64 Linux, in order."""
    with mock.patch.object(manylinux, "_get_glibc_version", return_value=glibc):
        platforms = [f"linux_{arch}", *manylinux.platform_tags([arch])]
    interpreter = f"cp{python[0]}{python[1]}"
    found = [*ptags.cpython_tags(python, abis=[interpreter], platforms=platforms),
             *ptags.compatible_tags(python, interpreter=interpreter, platforms=platforms)]
    return [str(tag) for tag in found]


def markers(full_version: str, arch: str = "x86_64") -> dict[str, str]:
    return {
        "implementation_name": "cpython",
        "implementation_version": full_version,
        "os_name": "posix",
        "platform_machine": arch,
        "platform_python_implementation": "CPython",
        # Not published for Kaggle's hosts; rarely used in markers.
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": full_version,
        "python_version": ".".join(full_version.split(".")[:2]),
        "sys_platform": "linux",
    }


def read_freeze(path: Path) -> dict[str, tuple[str, str]]:
    """canonical name -> (name, version) from `pip freeze`; `name @ file:///.../name-1.0.tar.gz` keeps the file's version."""
    found: dict[str, tuple[str, str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "==" in line:
            name, version = line.split("==", 1)
        else:
            match = re.match(r"^(\S+) @ file://.*/[^/]+-([0-9][^/]*?)\.(tar\.gz|zip|whl)$", line)
            if not match:
                continue  # a git URL has no version: not claimed
            name, version = match[1], match[2]
        found[canonicalize_name(name)] = (name.strip(), version.strip())
    return found


def kaggle_additions(path: Path) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """Exact `==` pins of kaggle_requirements.txt, and the names Kaggle installs without a pin."""
    pinned: dict[str, tuple[str, str]] = {}
    unpinned: list[str] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            unpinned.append(line)  # e.g. git+https URLs
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            pinned[canonicalize_name(req.name)] = (req.name, specs[0].version)
        else:
            unpinned.append(str(req))
    return pinned, unpinned


def build(name: str, freeze_dir: Path, kaggle_requirements: Path, description_extra: str) -> dict:
    freeze = read_freeze(freeze_dir / "pip-freeze.gpu.txt")
    os_info = (freeze_dir / "os-info-gpu.txt").read_text()
    full_version = re.search(r"^Python (\d+\.\d+\.\d+)", os_info, re.M)[1]
    python = tuple(int(x) for x in full_version.split(".")[:2])
    pinned, unpinned = kaggle_additions(kaggle_requirements)
    installed = dict(freeze)
    for key, (dist_name, version) in pinned.items():
        # `torchcodec==0.10.0` is already met by Colab's 0.10.0+cu128 (PEP 440 ignores the local label): pip keeps it.
        if key in installed and installed[key][1].split("+")[0] == version:
            continue
        installed[key] = (dist_name, version)
    rel = f"fixtures/colab-gpu/{freeze_dir.name}/pip-freeze.gpu.txt"
    return {
        "format": "offlinepack-target",
        "version": 1,
        "name": name,
        "description": SNAPSHOT_HINT.format(freeze=rel) + description_extra,
        "approximate": True,
        "interpreter": {"implementation": "cpython", "version": full_version},
        "platform": {"system": "linux", "machine": "x86_64", "libc": "glibc", "libc_version": "%d.%d" % GLIBC},
        "markers": markers(full_version),
        "tags": linux_tags(python, GLIBC),
        "installed": [{"name": n, "version": v, "requires": []} for _, (n, v) in sorted(installed.items())],
        "evidence": {
            "base": rel,
            "kaggle_pins": sorted(f"{n}=={v}" for n, v in pinned.values()),
            "requires": "not published for the freeze: installed[].requires are empty; a snapshot has them",
        },
        "unpinned_additions": sorted(unpinned, key=str.lower),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=REPO / "tests" / "data" / "fixtures")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    colab = args.fixtures / "colab-gpu"
    kaggle = colab / "kaggle_requirements.txt"
    targets = {
        "kaggle-gpu": build("kaggle-gpu", colab / "2026-05-py312", kaggle, ""),
        "kaggle-gpu-py313": build(
            "kaggle-gpu-py313", colab / "2026-08-py313", kaggle,
            " Python 3.13 variant (Colab moved to 3.13 in August 2026; Kaggle may follow)."),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in targets.items():
        path = args.out / f"{name}.json"
        path.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{path}: python {data['interpreter']['version']}, {len(data['tags'])} tags, "
              f"{len(data['installed'])} installed")


if __name__ == "__main__":
    main()
