"""A content-addressed file cache: `<root>/sha256/<ab>/<hash>/<filename>`, files read-only.

Only verified files enter it (`add` hashes first), and a file found by its hash is hashed again
before use (`intact`): a wheelhouse is hard-linked to the cache, so a file edited through one of its
links, or a damaged disk, must not ship bytes the lock does not name. The wheelhouse gets a hard link
where the file system allows (a warm rebuild copies nothing), else a copy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from offlinepack.atomic import move_into_place
from offlinepack.hashing import sha256_file
from offlinepack.errors import OfflinepackError

CACHE_ENV = "OFFLINEPACK_CACHE"
_CHUNK = 1 << 20


def default_cache_dir(environ: Mapping[str, str] = os.environ, home: Path | None = None) -> Path:
    """`$OFFLINEPACK_CACHE`, else `$XDG_CACHE_HOME/offlinepack`, else `~/.cache/offlinepack`."""
    if environ.get(CACHE_ENV):
        return Path(environ[CACHE_ENV]).expanduser()
    if environ.get("XDG_CACHE_HOME"):
        return Path(environ["XDG_CACHE_HOME"]) / "offlinepack"
    return (home or Path.home()) / ".cache" / "offlinepack"



class HashMismatch(OfflinepackError):
    """A file's content differs from the lock: it is deleted, never cached."""

    def __init__(self, filename: str, expected: str, actual: str, source: str) -> None:
        super().__init__(f"hash mismatch for {filename} from {source}: expected sha256 {expected}, got {actual}; "
                         "the file was discarded")
        self.filename, self.expected, self.actual = filename, expected, actual


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _folder(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256

    def get(self, sha256: str, filename: str) -> Path | None:
        path = self._folder(sha256) / filename
        return path if path.is_file() else None

    def find(self, sha256: str) -> Path | None:
        """Any cached file with this content, whatever its name."""
        folder = self._folder(sha256)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and not path.name.startswith("."):
                    return path
        return None

    def intact(self, path: Path, sha256: str) -> bool:
        """Whether the cached `path` still has the content `sha256`; a damaged entry is removed (fetched again)."""
        if sha256_file(path) == sha256:
            return True
        path.unlink(missing_ok=True)
        return False

    def staging(self) -> Path:
        """A folder on the cache's file system for partial downloads (renamed into place when verified)."""
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=folder))

    def add(self, source: Path, filename: str, expected_sha256: str | None, origin: str) -> tuple[Path, str]:
        """Move `source` into the cache after checking its hash; returns (cached path, sha256).

        On a mismatch `source` is deleted and HashMismatch raised: a bad file is never kept.
        """
        actual = sha256_file(source)
        if expected_sha256 is not None and actual != expected_sha256:
            source.unlink(missing_ok=True)
            raise HashMismatch(filename, expected_sha256, actual, origin)
        return move_into_place(source, self._folder(actual) / filename, read_only=True), actual


def place(cached: Path, dest: Path) -> None:
    """Hard-link `cached` to `dest`, or copy where links are impossible (other file system, no support)."""
    try:
        os.link(cached, dest)
    except OSError:
        shutil.copyfile(cached, dest)
