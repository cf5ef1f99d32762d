"""Fetch planned files into the cache in parallel; each is hash-checked before it is kept.

Files already cached are not fetched at all. Every failure (unreachable host, HTTP error, hash
mismatch) is collected so one run reports all of them; files that did arrive stay cached.
"""

from __future__ import annotations

import shutil
import urllib.error
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from offlinepack.atomic import why
from offlinepack.errors import OfflinepackError
from offlinepack.wheelhouse.cache import Cache
from offlinepack.wheelhouse.index import locate
from offlinepack.wheelhouse.select import PlannedFile


@dataclass(frozen=True, kw_only=True, slots=True)
class Progress:
    """What the library tells a progress callback; `total` is None when the size is unknown."""

    stage: str  # "download" | "build"
    filename: str
    done: int
    total: int | None
    finished: bool = False


ProgressCallback = Callable[[Progress], None]


def _ignore(_: Progress) -> None:
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class FetchResult:
    cached: dict[str, Path]  # sha256 -> cached file
    downloaded: tuple[str, ...]  # file names fetched over the network this run
    downloaded_bytes: int
    problems: tuple[str, ...]


def _fetch_one(item: PlannedFile, cache: Cache, progress: ProgressCallback, timeout: float) -> tuple[Path, int]:
    import urllib.request  # lazily: a warm rebuild never downloads, and this import is the slowest here

    try:
        staging = cache.staging()
    except OSError as error:
        raise CacheWriteError(error) from error
    part = staging / item.filename
    done = 0
    try:
        request = urllib.request.Request(item.url, headers={"User-Agent": "offlinepack"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            try:
                out = open(part, "wb")
            except OSError as error:
                raise CacheWriteError(error) from error
            try:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else item.size
                progress(Progress(stage="download", filename=item.filename, done=0, total=total))
                while chunk := response.read(1 << 16):
                    try:
                        out.write(chunk)
                    except OSError as error:  # the cache's disk, not the network
                        raise CacheWriteError(error) from error
                    done += len(chunk)
                    progress(Progress(stage="download", filename=item.filename, done=done, total=total))
                try:
                    out.flush()  # a full disk shows here for the last buffered bytes
                except OSError as error:
                    raise CacheWriteError(error) from error
            finally:
                try:
                    out.close()
                except OSError:  # flush() above reported a full disk; a short file would fail its hash anyway
                    pass
        try:
            path, _ = cache.add(part, item.filename, item.sha256, item.url)
        except OSError as error:
            raise CacheWriteError(error) from error
        progress(Progress(stage="download", filename=item.filename, done=done, total=total, finished=True))
        return path, done
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class CacheWriteError(Exception):
    """Writing into the download cache failed (disk full, read-only): not a network problem."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return getattr(reason, "strerror", None) or str(reason)
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return str(error)


def fetch_all(files: Sequence[PlannedFile], cache: Cache, *, jobs: int = 8, progress: ProgressCallback = _ignore,
              timeout: float = 60.0, index_urls: Sequence[str] = ()) -> FetchResult:
    """Make every file of `files` available in `cache`; never raises for a per-file failure.

    Files without a URL (portable locks) are first looked up by name on `index_urls`.
    """
    cached: dict[str, Path] = {}
    missing: list[PlannedFile] = []
    hits = {item.sha256: hit for item in files
            if (hit := cache.get(item.sha256, item.filename) or cache.find(item.sha256)) is not None}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # hashing releases the GIL
        intact = dict(zip(hits, pool.map(cache.intact, hits.values(), hits.keys())))
    for item in files:
        if intact.get(item.sha256):
            cached[item.sha256] = hits[item.sha256]
        elif item.sha256 not in {m.sha256 for m in missing}:
            missing.append(item)
    problems: list[str] = []
    unplaced = [(m.package, m.filename) for m in missing if m.url is None]
    if unplaced:
        located = locate(unplaced, index_urls, jobs=jobs, timeout=timeout)
        problems += located.problems
        missing = [replace(m, url=located.urls[m.filename]) if m.url is None else m
                   for m in missing if m.url is not None or m.filename in located.urls]
    downloaded: list[str] = []
    total_bytes = 0
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [(item, pool.submit(_fetch_one, item, cache, progress, timeout)) for item in missing]
            for item, future in futures:
                try:
                    path, size = future.result()
                except OfflinepackError as error:  # hash mismatch: the message says it all
                    problems.append(error.message)
                except CacheWriteError as error:
                    problems.append(f"cannot store {item.filename} ({item.package} {item.version}) in the cache "
                                    f"{cache.root}: {why(error.error)}")
                except (OSError, ValueError) as error:  # URLError is an OSError; ValueError: bad URL
                    problems.append(f"cannot download {item.filename} ({item.package} {item.version}) from "
                                    f"{item.url}: {_describe(error)}")
                else:
                    cached[item.sha256] = path
                    downloaded.append(item.filename)
                    total_bytes += size
    return FetchResult(cached=cached, downloaded=tuple(downloaded), downloaded_bytes=total_bytes,
                       problems=tuple(problems))
