"""Wheels of distributions installed in this environment, so a fresh venv can `pip install` them with no index.

Each wheel holds the files the distribution's RECORD lists: those under site-packages as they are, a script
outside it (uv's `bin/uv` binary) under `<name>-<version>.data/scripts/`, console scripts left out (pip writes
them again from entry_points.txt). The installed WHEEL file's tags are kept, so pip checks them as usual.
"""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.tags import sys_tags
from packaging.utils import canonicalize_name

from tests.support.wheels import _record_hash


def dependency_closure(requirements: list[str]) -> list[str]:
    """Canonical names of the installed distributions that `requirements` need here, transitively."""
    environment = default_environment()
    seen: set[str] = set()
    queue = [(Requirement(text), "") for text in requirements]
    while queue:
        requirement, extra = queue.pop()
        if requirement.marker and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        key = canonicalize_name(requirement.name)
        if key in seen:
            continue
        seen.add(key)
        for text in metadata.requires(requirement.name) or ():
            for wanted in ("", *requirement.extras):
                queue.append((Requirement(text), wanted))
    return sorted(seen)


def repack(name: str, out_dir: Path) -> Path:
    """`name` as installed here, as a wheel in `out_dir`."""
    dist = metadata.distribution(name)
    version = dist.version
    module = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    info = next(str(f).split("/")[0] for f in dist.files if str(f).split("/")[0].endswith(".dist-info"))
    scripts = {entry.name for entry in dist.entry_points if entry.group in ("console_scripts", "gui_scripts")}
    contents: dict[str, bytes] = {}
    for file in dist.files or []:
        rel = file.as_posix()
        if rel.endswith((".pyc", "/RECORD", "/INSTALLER", "/REQUESTED", "/direct_url.json")):
            continue
        path = Path(file.locate())
        if not path.is_file():
            continue
        if rel.startswith("../"):
            script = rel.rsplit("/", 1)[1]
            if "/bin/" not in rel or script in scripts:
                continue
            rel = f"{info.removesuffix('.dist-info')}.data/scripts/{script}"
        contents[rel] = path.read_bytes()
    record = "".join(f"{rel},{_record_hash(data)},{len(data)}\n" for rel, data in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    tags = [line.split(":", 1)[1].strip() for line in dist.read_text("WHEEL").splitlines() if line.startswith("Tag:")]
    here = {str(tag) for tag in sys_tags()}
    tag = next((t for t in tags if t in here), tags[0])  # e.g. py3-none-any of a py2.py3 wheel
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{module}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for rel, data in contents.items():
            info_ = zipfile.ZipInfo(rel)
            info_.external_attr = (0o100755 if "/scripts/" in rel else 0o100644) << 16  # a regular file (pip checks)
            info_.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info_, data, compresslevel=1)
    return wheel
