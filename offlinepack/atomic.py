"""Write a file so that readers see the old content or the new, never a partial one."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from offlinepack.errors import OfflinepackError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomically(path: Path, text: str) -> None:
    """A temporary file in the same folder, then rename; with the mode a plain `open` would give
    (mkstemp's 0600 would make a lock or target file unreadable to others)."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from None
        raise


def _cannot_write(path: Path, error: OSError) -> OfflinepackError:
    why = "disk full" if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else error.strerror or str(error)
    kept = " (an older file there was kept)" if path.exists() else ""
    return OfflinepackError(f"cannot write {path}: {why}{kept}",
                            hint="pick a folder you can write to with -o/--output")
