"""Requires-Dist of a resolved file, read from the index without installing anything.

Used only to explain a conflict or a held-back version (uv's pylock output has no dependency
specifiers). Wheels: the PEP 658 `.metadata` file when the index has one, else the wheel itself;
sdists: PKG-INFO from the archive. Files over `max_bytes` are never downloaded.
"""

from __future__ import annotations

import io
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from email.parser import HeaderParser
from pathlib import Path
from urllib.parse import unquote, urlparse

MAX_BYTES = 64 * 1024 * 1024


def _get(url: str, max_bytes: int, timeout: float) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (index URLs only)
            length = response.headers.get("Content-Length")
            if length and int(length) > max_bytes:
                return None
            data = response.read(max_bytes + 1)
            return None if len(data) > max_bytes else data
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _requires(metadata_text: str) -> tuple[str, ...]:
    return tuple(HeaderParser().parsestr(metadata_text).get_all("Requires-Dist") or ())


def _from_archive(name: str, data: bytes) -> tuple[str, ...] | None:
    try:
        if name.endswith(".whl"):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                member = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
                return _requires(archive.read(member).decode("utf-8", "replace"))
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
            handle = archive.extractfile(member)
            return _requires(handle.read().decode("utf-8", "replace")) if handle else None
    except (zipfile.BadZipFile, tarfile.TarError, StopIteration, OSError, EOFError):
        return None


def file_requires(location: str, *, max_bytes: int = MAX_BYTES, timeout: float = 30.0) -> tuple[str, ...] | None:
    """Requires-Dist of the wheel or sdist at `location` (URL or local path); None when unknown."""
    parsed = urlparse(location)
    name = unquote(Path(parsed.path).name)
    if parsed.scheme in ("http", "https"):
        if name.endswith(".whl"):
            metadata = _get(location.split("#")[0] + ".metadata", 1024 * 1024, timeout)
            if metadata is not None:
                return _requires(metadata.decode("utf-8", "replace"))
        data = _get(location.split("#")[0], max_bytes, timeout)
    else:
        path = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(location)
        try:
            data = path.read_bytes() if path.stat().st_size <= max_bytes else None
        except OSError:
            data = None
    return None if data is None else _from_archive(name, data)


def requires_of(locations: Mapping[str, str], *, workers: int = 8) -> dict[str, tuple[str, ...] | None]:
    """{key: Requires-Dist} for {key: file location}, fetched in parallel."""
    keys = list(locations)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys) or 1))) as pool:
        return dict(zip(keys, pool.map(file_requires, (locations[k] for k in keys))))
