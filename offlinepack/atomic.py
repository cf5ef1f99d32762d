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
import shutil
import stat
import tempfile
from collections.abc import Iterator
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
def replacing(path: Path | str, hint: str = DEFAULT_HINT) -> Iterator[Path]:
    """Yield a temporary path beside `path`'s real target; when the block ends without error, it replaces that
    target (an existing file's mode kept, else the umask's; flushed to disk first).

    OSError passes through, for callers that say in their own words what failed (a mask, a zip); on any error
    the temporary file is removed and the old file is untouched. The name is `.<name>.<random>.tmp`, which a
    run's sweep of stale temp files recognises.
    """
    real = resolve_output(Path(path), hint)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    real.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # mkstemp's 0600 would make a lock or target file unreadable to others
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, real)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str, hint: str = DEFAULT_HINT) -> Iterator[Path]:
    """`replacing`, with an OSError turned into an OfflinepackError naming `path` ("disk full" where the disk
    says so)."""
    path = Path(path)
    try:
        with replacing(path, hint) as tmp:
            yield tmp
    except OSError as error:
        raise cannot_write(path, error, hint) from None


def write_bytes_atomically(path: Path | str, data: bytes, hint: str = DEFAULT_HINT) -> Path:
    with atomic_path(path, hint) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomically(path: Path | str, text: str, hint: str = DEFAULT_HINT) -> Path:
    return write_bytes_atomically(path, text.encode("utf-8"), hint)


def cannot_write(path: Path, error: OSError, hint: str = DEFAULT_HINT) -> OfflinepackError:
    kept = " (an older file there was kept)" if os.path.lexists(path) else ""
    full = " (free some space first)" if error.errno in DISK_FULL else ""
    return OfflinepackError(f"cannot write {path}: {why(error)}{kept}", hint=hint + full)


def move_into_place(source: Path, final: Path, *, read_only: bool = False) -> Path:
    """Rename a finished file (built or downloaded in a temp folder on the same disk) to `final`, creating its
    folder; `read_only`: 0444 first, so a hard-linked copy (a wheelhouse) cannot edit a cache entry."""
    final.parent.mkdir(parents=True, exist_ok=True)
    if read_only:
        os.chmod(source, 0o444)
    os.replace(source, final)
    return final


def replace_folder(staging: Path, output: Path) -> bool:
    """Rename the complete folder `staging` to `output` (same parent); an old `output` is removed only after
    the new one is in place, and put back if the rename fails. Returns whether an old folder was replaced."""
    if not output.exists():
        os.rename(staging, output)
        return False
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    os.rename(output, old / output.name)
    try:
        os.rename(staging, output)
    except BaseException:
        os.rename(old / output.name, output)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return True


def umask_modes(root: Path) -> None:
    """Give `root` and everything under it the modes a plain mkdir/open would (mkdtemp's 0700 and mkstemp's
    0600 would hide a staged folder's files from other users once it is renamed into place)."""
    mask = _umask()
    for path in [root, *root.rglob("*")]:
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~mask)
