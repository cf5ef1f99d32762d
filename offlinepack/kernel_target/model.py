"""The Target value and its JSON file format (shared with `runtime/bootstrap.py snapshot`).

File format (`offlinepack-target`, version 1), written by `offlinepack snapshot` and by
`python bootstrap.py snapshot` (standard library only, so keep it plain JSON)::

    {
      "format": "offlinepack-target", "version": 1,
      "name": "kaggle-gpu",                      # free text, shown to users
      "description": "...", "approximate": false, # approximate: versions are a best guess, not a snapshot
      "interpreter": {"implementation": "cpython", "version": "3.12.3"},
      "platform": {"system": "linux", "machine": "x86_64", "libc": "glibc", "libc_version": "2.35"},
      "markers": {"python_version": "3.12", ...},  # the full PEP 508 marker environment
      "tags": ["cp312-cp312-manylinux_2_35_x86_64", ...],  # most preferred first
      "installed": [{"name": "numpy", "version": "2.0.2", "requires": ["..."]}]
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from offlinepack.atomic import write_text_atomically
from offlinepack.errors import OfflinepackError
from offlinepack.files import read_json

FORMAT = "offlinepack-target"
CAPTURE_FILES = "env.json + pip-inspect.json"  # the other --target form (kernel_target/convert.py)
FORMAT_VERSION = 1

MARKER_KEYS = (
    "implementation_name",
    "implementation_version",
    "os_name",
    "platform_machine",
    "platform_python_implementation",
    "platform_release",
    "platform_system",
    "platform_version",
    "python_full_version",
    "python_version",
    "sys_platform",
)

# a damaged or cut-short target file: the way to a good one
RESNAP_HINT = ("capture the kernel again: `python bootstrap.py snapshot -o kernel.json` "
               "(or `offlinepack snapshot -o FILE`), "
               "or pass a built-in --target (see `offlinepack targets`)")


@dataclass(frozen=True, kw_only=True, slots=True)
class InstalledDistribution:
    name: str
    version: str
    requires: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """The canonical (PEP 503) name, for lookups."""
        return canonicalize_name(self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    name: str
    implementation: str  # "cpython"
    python_version: str  # full version, "3.12.3"
    system: str  # "linux"
    machine: str  # "x86_64"
    libc: str | None  # "glibc" / "musl" / None
    libc_version: str | None  # "2.35"
    markers: Mapping[str, str]
    tags: tuple[str, ...]
    installed: tuple[InstalledDistribution, ...] = ()
    description: str = ""
    approximate: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)  # unknown top-level keys, kept on round trip

    @property
    def python_minor(self) -> str:
        """"3.12" from "3.12.3"."""
        return ".".join(self.python_version.split(".")[:2])

    def installed_by_key(self) -> dict[str, InstalledDistribution]:
        return {dist.key: dist for dist in self.installed}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "name": self.name,
            "description": self.description,
            "approximate": self.approximate,
            "interpreter": {"implementation": self.implementation, "version": self.python_version},
            "platform": {
                "system": self.system,
                "machine": self.machine,
                "libc": self.libc,
                "libc_version": self.libc_version,
            },
            "markers": dict(self.markers),
            "tags": list(self.tags),
            "installed": [
                {"name": d.name, "version": d.version, "requires": list(d.requires)} for d in self.installed
            ],
        }
        data.update({k: v for k, v in self.extra.items() if k not in data})
        return data


def _json_kind(kind: type) -> str:
    """A type as a JSON file's reader knows it: object, array, string, ..."""
    if issubclass(kind, Mapping):
        return "object"
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number",
            type(None): "null"}.get(kind, kind.__name__)


def _expect(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, problems: list[str]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        names = _json_kind(kind) if isinstance(kind, type) else " or ".join(_json_kind(k) for k in kind)
        got = "missing" if key not in data else _json_kind(type(value))
        problems.append(f"{where}{key}: expected {names}, got {got}")
        return None
    return value


def parse_target(data: Any, source: str = "<target>") -> Target:
    """Validate a decoded target file; every problem is reported at once, each with its field path."""
    if not isinstance(data, Mapping):
        raise OfflinepackError(f"{source}: a target file must hold a JSON object", hint=RESNAP_HINT)
    problems: list[str] = []
    if data.get("format") != FORMAT:
        # not a target file at all: its fields would each be "missing" (hundreds of lines for a pip inspect)
        capture = "pip_version" in data or "marker_environment" in data
        raise OfflinepackError(
            f"{source} is not a target file", problems=[f"format: expected {FORMAT!r}, got {data.get('format')!r}"],
            hint=(f"it looks like part of a capture: pass the folder holding {CAPTURE_FILES} as --target"
                  if capture else "write a target file with `offlinepack snapshot -o FILE` or "
                                  "`python bootstrap.py snapshot -o FILE`"))
    if data.get("version") != FORMAT_VERSION:
        problems.append(f"version: expected {FORMAT_VERSION}, got {data.get('version')!r}")
    name = _expect(data, "name", str, "", problems)
    interpreter = _expect(data, "interpreter", Mapping, "", problems) or {}
    platform = _expect(data, "platform", Mapping, "", problems) or {}
    markers = _expect(data, "markers", Mapping, "", problems)
    tags = _expect(data, "tags", list, "", problems)
    installed_raw = data.get("installed", [])
    if not isinstance(data.get("approximate", False), bool):
        problems.append(f"approximate: expected true or false, got {_json_kind(type(data['approximate']))}")
    for key in ("libc", "libc_version"):
        if platform and platform.get(key) is not None and not isinstance(platform[key], str):
            problems.append(f"platform.{key}: expected string, got {_json_kind(type(platform[key]))}")
    implementation = _expect(interpreter, "implementation", str, "interpreter.", problems) if interpreter else None
    version = _expect(interpreter, "version", str, "interpreter.", problems) if interpreter else None
    system = _expect(platform, "system", str, "platform.", problems) if platform else None
    machine = _expect(platform, "machine", str, "platform.", problems) if platform else None
    if markers is not None:  # an empty object too: every key is needed to evaluate markers
        missing = [key for key in MARKER_KEYS if key not in markers]
        if missing:
            problems.append(f"markers: missing {', '.join(missing)} (the full PEP 508 marker environment)")
        for key in MARKER_KEYS:
            if key in markers:
                _expect(markers, key, str, "markers.", problems)
    markers = markers or {}
    for i, tag in enumerate(tags or []):
        if not isinstance(tag, str) or tag.count("-") != 2:
            problems.append(f"tags[{i}]: expected 'python-abi-platform', got {tag!r}")
    if tags is not None and not tags:
        problems.append("tags: empty (a target needs at least one wheel tag)")
    installed: list[InstalledDistribution] = []
    if not isinstance(installed_raw, list):
        problems.append(f"installed: expected array, got {_json_kind(type(installed_raw))}")
        installed_raw = []
    for i, item in enumerate(installed_raw):
        where = f"installed[{i}]."
        if not isinstance(item, Mapping):
            problems.append(f"installed[{i}]: expected object, got {_json_kind(type(item))}")
            continue
        dist_name = _expect(item, "name", str, where, problems)
        dist_version = _expect(item, "version", str, where, problems)
        requires = item.get("requires", [])
        if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
            problems.append(f"{where}requires: expected an array of strings")
            requires = []
        if dist_name and dist_version:
            installed.append(InstalledDistribution(name=dist_name, version=dist_version, requires=tuple(requires)))
    if problems:
        raise OfflinepackError(f"{source} is not a valid target file", problems=problems,
                               hint="write a target file with `offlinepack snapshot -o FILE` or "
                                    "`python bootstrap.py snapshot -o FILE`")
    known = {"format", "version", "name", "description", "approximate", "interpreter", "platform", "markers", "tags", "installed"}
    return Target(
        name=name,
        implementation=implementation,
        python_version=version,
        system=system,
        machine=machine,
        libc=platform.get("libc"),
        libc_version=platform.get("libc_version"),
        markers={k: str(v) for k, v in markers.items()},
        tags=tuple(tags),
        installed=tuple(installed),
        description=str(data.get("description", "")),
        approximate=bool(data.get("approximate", False)),
        extra={k: v for k, v in data.items() if k not in known},
    )


def load_target_file(path: Path) -> Target:
    return parse_target(read_json(path, "target file ", hint=RESNAP_HINT), source=str(path))


def dump_target(target: Target, path: Path) -> None:
    """Written atomically: a temporary file in the same folder, then rename."""
    write_text_atomically(Path(path), json.dumps(target.to_dict(), indent=1) + "\n")
