"""Turn a folder captured with standard tools (`env.json` + `pip inspect` output) into a Target.

The folder layout is the one in the shared `gpu-kernel` fixture:

- `env.json`: `{"marker_environment": {...PEP 508...}, "tags": [...sys_tags order...],
  "glibc": ["glibc", "2.39"], ...}` (other keys such as torch/CUDA versions are kept in `extra`);
- `pip-inspect.json`: the output of `python -m pip inspect` (version "1").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from offlinepack.errors import OfflinepackError
from offlinepack.files import read_json
from offlinepack.kernel_target.model import MARKER_KEYS, RESNAP_HINT, InstalledDistribution, Target

ENV_FILE = "env.json"
INSPECT_FILE = "pip-inspect.json"

def is_inspect_folder(path: Path) -> bool:
    return path.is_dir() and (path / ENV_FILE).is_file() and (path / INSPECT_FILE).is_file()


def installed_from_inspect(data: Any, source: str, problems: list[str]) -> tuple[InstalledDistribution, ...]:
    """Installed distributions (name, version, Requires-Dist) from `pip inspect` output."""
    if not isinstance(data, Mapping) or not isinstance(data.get("installed"), list):
        problems.append(f"{source}: expected `pip inspect` output (an object with an `installed` list)")
        return ()
    seen: set[str] = set()
    result: list[InstalledDistribution] = []
    for i, item in enumerate(data["installed"]):
        metadata = item.get("metadata") if isinstance(item, Mapping) else None
        if not isinstance(metadata, Mapping) or not isinstance(metadata.get("name"), str) \
                or not isinstance(metadata.get("version"), str):
            problems.append(f"{source}: installed[{i}].metadata: expected name and version")
            continue
        dist = InstalledDistribution(name=metadata["name"], version=metadata["version"],
                                     requires=tuple(str(r) for r in metadata.get("requires_dist") or ()))
        # Like importlib.metadata, the first one found on the path wins.
        if dist.key not in seen:
            seen.add(dist.key)
            result.append(dist)
    return tuple(result)


def target_from_inspect_folder(folder: Path, name: str | None = None) -> Target:
    """Read `env.json` + `pip-inspect.json` from `folder`; every problem is reported at once."""
    folder = Path(folder)
    env = read_json(folder / ENV_FILE, hint=RESNAP_HINT)
    inspect = read_json(folder / INSPECT_FILE, hint=RESNAP_HINT)
    problems: list[str] = []
    if not isinstance(env, Mapping):
        raise OfflinepackError(f"{folder / ENV_FILE}: expected a JSON object", hint=RESNAP_HINT)
    markers = env.get("marker_environment")
    if not isinstance(markers, Mapping):
        problems.append(f"{folder / ENV_FILE}: marker_environment: expected object")
        markers = {}
    for key in MARKER_KEYS:
        if markers and not isinstance(markers.get(key), str):
            problems.append(f"{folder / ENV_FILE}: marker_environment.{key}: expected str")
    tags = env.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t.count("-") == 2 for t in tags):
        problems.append(f"{folder / ENV_FILE}: tags: expected a non-empty list of 'python-abi-platform' strings")
        tags = []
    libc = env.get("glibc")
    libc_name, libc_version = (libc[0], libc[1]) if isinstance(libc, list) and len(libc) == 2 else (None, None)
    installed = installed_from_inspect(inspect, str(folder / INSPECT_FILE), problems)
    if problems:
        raise OfflinepackError(f"{folder} is not a usable target folder", problems=problems,
                               hint="it needs env.json (marker_environment, tags, glibc) and pip-inspect.json "
                                    "(`python -m pip inspect`)")
    known = {"marker_environment", "tags", "glibc"}
    return Target(
        name=name or folder.name,
        implementation=str(markers["implementation_name"]),
        python_version=str(markers["python_full_version"]),
        system=str(markers["platform_system"]).lower(),
        machine=str(markers["platform_machine"]),
        libc=libc_name or None,
        libc_version=libc_version or None,
        markers={k: str(v) for k, v in markers.items()},
        tags=tuple(tags),
        installed=installed,
        description=f"converted from {folder} (env.json + pip inspect)",
        approximate=False,
        extra={"source": {k: v for k, v in env.items() if k not in known}},
    )
