"""Write tiny but real wheels and sdists (valid RECORD, METADATA, importable module)."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from packaging.utils import canonicalize_name


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _metadata(name: str, version: str, requires: Iterable[str], requires_python: str | None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n\n"


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    *,
    requires: Iterable[str] = (),
    tag: str = "py3-none-any",
    requires_python: str | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """A wheel whose top-level module `<name>` (underscored) sets __version__.

    `tag` is `python-abi-platform`, e.g. `cp312-cp312-manylinux_2_17_x86_64`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    module = canonicalize_name(name).replace("-", "_")
    dist = f"{module}-{version}"
    info = f"{dist}.dist-info"
    contents: dict[str, bytes] = {f"{module}/__init__.py": f"__version__ = {version!r}\n".encode()}
    for rel, text in (files or {}).items():
        contents[rel] = text.encode()
    contents[f"{info}/METADATA"] = _metadata(name, version, requires, requires_python).encode()
    pure = "true" if tag.endswith("-none-any") else "false"
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: offlinepack-tests\nRoot-Is-Purelib: {pure}\nTag: {tag}\n\n".encode()
    )
    record = io.StringIO()
    for rel, data in contents.items():
        record.write(f"{rel},{_record_hash(data)},{len(data)}\n")
    record.write(f"{info}/RECORD,,\n")
    contents[f"{info}/RECORD"] = record.getvalue().encode()
    path = folder / f"{dist}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, data in contents.items():
            archive.writestr(rel, data)
    return path


_IN_TREE_BACKEND = '''\
"""A build backend with no dependencies, so sdists build offline and without an index."""
import base64, hashlib, os, zipfile

NAME, VERSION, REQUIRES = {name!r}, {version!r}, {requires!r}
MODULE = NAME.lower().replace("-", "_").replace(".", "_")


def _hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def get_requires_for_build_wheel(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{{MODULE}}-{{VERSION}}.dist-info"
    meta = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n" + "".join(
        f"Requires-Dist: {{r}}\\n" for r in REQUIRES) + "\\n"
    files = {{
        f"{{MODULE}}/__init__.py": f"__version__ = {{VERSION!r}}\\n".encode(),
        f"{{info}}/METADATA": meta.encode(),
        f"{{info}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: intree\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n\\n",
    }}
    record = "".join(f"{{k}},{{_hash(v)}},{{len(v)}}\\n" for k, v in files.items()) + f"{{info}}/RECORD,,\\n"
    files[f"{{info}}/RECORD"] = record.encode()
    name = f"{{MODULE}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for k, v in files.items():
            archive.writestr(k, v)
    return name


def build_sdist(sdist_directory, config_settings=None):
    raise NotImplementedError("this test backend only builds wheels")
'''


def make_sdist(folder: Path, name: str, version: str, *, requires: Iterable[str] = ()) -> Path:
    """A pure-Python sdist (`name-version.tar.gz`) with an in-tree PEP 517 backend needing nothing."""
    folder.mkdir(parents=True, exist_ok=True)
    module = canonicalize_name(name).replace("-", "_")
    root = f"{module}-{version}"
    requires = list(requires)
    members = {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "intree_backend"\nbackend-path = ["."]\n',
        "intree_backend.py": _IN_TREE_BACKEND.format(name=name, version=version, requires=requires),
        "PKG-INFO": _metadata(name, version, requires, None).replace("Metadata-Version: 2.1", "Metadata-Version: 2.2"),
    }
    path = folder / f"{root}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for rel, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{root}/{rel}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
