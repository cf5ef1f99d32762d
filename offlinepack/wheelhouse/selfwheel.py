"""offlinepack's own files for the wheelhouse: `bootstrap.py` and an offlinepack wheel.

From a source checkout the wheel is built with `uv build --wheel` (pip as fallback) and cached by a
hash of the sources, so a rebuild with unchanged sources builds nothing. From an installed wheel it is
repacked from the installed files (RECORD), because there is no index to download offlinepack from.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import offlinepack
from offlinepack.atomic import move_into_place
from offlinepack.hashing import record_hash
from offlinepack.kernel import PACKAGE_DIR, source_root
from offlinepack.wheelhouse.cache import sha256_file
from offlinepack.wheelhouse.sdist import build_command, run_build

@dataclass(frozen=True, kw_only=True, slots=True)
class SelfWheel:
    path: Path
    version: str
    sha256: str
    size: int


def _source_files(root: Path) -> list[Path]:
    files = [root / "pyproject.toml", root / "README.md", root / "runtime" / "bootstrap.py"]
    files += [p for p in (root / "offlinepack").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted(p for p in files if p.is_file())


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def wheel_info(path: Path) -> SelfWheel:
    version = path.name.split("-")[1]
    return SelfWheel(path=path, version=version, sha256=sha256_file(path), size=path.stat().st_size)



def repack_installed(out_dir: Path, dist_name: str = "offlinepack") -> Path:
    """Rebuild a wheel from an installed distribution's files (those under site-packages)."""
    dist = metadata.distribution(dist_name)
    version = dist.version
    info_dir = f"{dist_name}-{version}.dist-info"
    entries: dict[str, bytes] = {}
    for file in dist.files or []:
        rel = file.as_posix()
        # only the package and its metadata: console scripts are regenerated from entry_points.txt
        if rel.split("/")[0] not in (dist_name, info_dir) or "__pycache__" in rel or rel.endswith(".pyc"):
            continue
        if rel.endswith(("/RECORD", "/INSTALLER", "/REQUESTED", "/direct_url.json")):
            continue
        entries[rel] = Path(file.locate()).read_bytes()
    record = "".join(f"{rel},{record_hash(data)},{len(data)}\n" for rel, data in entries.items())
    entries[f"{info_dir}/RECORD"] = (record + f"{info_dir}/RECORD,,\n").encode()
    path = out_dir / f"{dist_name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, data in entries.items():
            archive.writestr(rel, data)
    return path


def offlinepack_wheel(cache_root: Path, package_dir: Path = PACKAGE_DIR) -> SelfWheel:
    """The wheel of the running offlinepack, built once per source state and then served from the cache."""
    root = source_root(package_dir)
    key = source_hash(root) if root is not None else f"installed-{offlinepack.__version__}"
    folder = cache_root / "self" / key
    cached = sorted(folder.glob("offlinepack-*.whl")) if folder.is_dir() else []
    if cached:
        return wheel_info(cached[0])
    (cache_root / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="self-", dir=cache_root / "tmp"))
    try:
        if root is not None:
            wheel = run_build(build_command(root, work), "offlinepack itself", work)
        else:
            wheel = repack_installed(work)
        return wheel_info(move_into_place(wheel, folder / wheel.name, read_only=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
