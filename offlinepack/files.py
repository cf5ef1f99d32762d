"""Reading JSON files and probing folders, with errors that say which file and where in it.

Writing lives in offlinepack/atomic.py.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from offlinepack.errors import OfflinepackError, not_utf8

WRITE_TEST_PREFIX = ".offlinepack-write-test-"


def read_json(path: Path, what: str = "", hint: str | None = None) -> Any:
    """The decoded JSON of `path`; an unreadable, non-UTF-8 or malformed file is an OfflinepackError
    naming the file (and the line and column of a syntax error). `what` names the file's role
    ("target file ") in the cannot-read message; `hint` says how to get a good file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise OfflinepackError(f"cannot read {what}{path}: {error.strerror}", hint=hint) from None
    except UnicodeDecodeError as error:
        raise OfflinepackError(not_utf8(path, error), hint=hint) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise OfflinepackError(f"{path}: not JSON (line {error.lineno}, column {error.colno}: {error.msg})",
                               hint=hint) from None


def json_or_none(path: Path) -> Any:
    """The decoded JSON of `path`, or None when it is missing, unreadable or malformed: for files whose damage
    only means "not one of ours" (a manifest looked for, a cache record that is then rebuilt)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def probe_writable(folder: Path) -> None:
    """Create and remove a file in `folder`: the only reliable test (permission bits say nothing about
    read-only mounts, quotas or ACLs). Raises the OSError when it cannot."""
    handle, name = tempfile.mkstemp(prefix=WRITE_TEST_PREFIX, dir=folder)
    os.close(handle)
    os.unlink(name)
