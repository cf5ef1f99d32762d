"""Write a file so that readers see the old content or the new, never a partial one.

One place decides for every writer (lock, snapshot, build, submission zip, masks) what `-o PATH`
means when PATH is not a plain file:
- a symlink is written through: its final target is replaced atomically and the link stays;
- a device, FIFO or socket is refused (a rename would turn `/dev/full` into a regular file);
- a folder is refused (a file name is needed);
- a new file gets the mode a plain `open` would give (umask), an existing one keeps its mode.
runtime/bootstrap.py carries a standard-library copy of these rules (it runs before offlinepack exists).
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from offlinepack.errors import OfflinepackError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
DEFAULT_HINT = "pick a folder you can write to with -o/--output"
_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def why(error: OSError) -> str:
    """A short reason for a failed write: "disk full" for every way a disk says so."""
    return "disk full" if error.errno in DISK_FULL else error.strerror or str(error)


def resolve_output(path: Path | str, hint: str = DEFAULT_HINT) -> Path:
    """The regular file a write to `path` replaces: a symlink's final target; refuses special files.

    Called before any work, so a bad -o fails in a second, not after a long resolve or build.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    try:
        info = os.stat(real)
    except OSError:  # not there (or not reachable): the write itself says why, with the caller's message
        return real
    for test, kind in _KINDS:
        if test(info.st_mode):
            shown = path if real == path.absolute() else f"{path} (-> {real})"
            fix = "give a file name inside it" if kind == "a folder" else "give the path of a regular file"
            raise OfflinepackError(f"cannot write {shown}: it is {kind}, not a regular file; nothing was written",
                                   hint=f"{fix}; {hint}")
    return real


def output_folder(path: Path | str) -> Path:
    """Where a folder output (a wheelhouse, a checkpoint) goes: a symlink is written through (its target is
    replaced, the link stays), as for files."""
    path = Path(path)
    return Path(os.path.realpath(path)) if path.is_symlink() else path


@contextmanager
def atomic_path(path: Path | str, hint: str = DEFAULT_HINT) -> Iterator[Path]:
    """Yield a temporary path beside `path`'s real target; on success it replaces that target.

    On any error the temporary file is removed and the old file is untouched; OSError becomes an
    OfflinepackError naming `path` ("disk full" where the disk says so).
    """
    path = Path(path)
    real = resolve_output(path, hint)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
        os.close(fd)
    except OSError as error:
        raise cannot_write(path, error, hint) from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # mkstemp's 0600 would make a lock or target file unreadable to others
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, real)
    except OSError as error:
        raise cannot_write(path, error, hint) from None
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomically(path: Path | str, data: bytes, hint: str = DEFAULT_HINT) -> Path:
    with atomic_path(path, hint) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomically(path: Path | str, text: str, hint: str = DEFAULT_HINT) -> Path:
    return write_bytes_atomically(path, text.encode("utf-8"), hint)


def write_with_atomically(path: Path | str, writer: Callable[[Path], object], hint: str = DEFAULT_HINT) -> Path:
    """`writer(tmp)` writes the content (a zip, a TIFF); then it replaces `path` as above."""
    with atomic_path(path, hint) as tmp:
        writer(tmp)
    return Path(path)


def cannot_write(path: Path, error: OSError, hint: str = DEFAULT_HINT) -> OfflinepackError:
    kept = " (an older file there was kept)" if os.path.lexists(path) else ""
    full = " (free some space first)" if error.errno in DISK_FULL else ""
    return OfflinepackError(f"cannot write {path}: {why(error)}{kept}", hint=hint + full)
