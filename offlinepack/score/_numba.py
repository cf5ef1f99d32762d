"""numba's `njit(cache=True)`, with a cache that works when the installed package is read-only.

numba caches compiled code in `__pycache__` beside the source, else in `~/.cache/numba`; in a Kaggle kernel or a
system install both can be read-only, and then `cache=True` fails when a function is decorated. So, before numba is
imported, point NUMBA_CACHE_DIR at a writable folder when the package folder is not writable and the user has not
chosen one.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from offlinepack.errors import OfflinepackError

PACKAGE_DIR = Path(__file__).resolve().parent


def writable_dir(path: Path) -> bool:
    """True when files can be created in `path`, creating the folder if needed."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _in_tree_writable(package_dir: Path) -> bool:
    """Whether numba's own choice, `__pycache__` beside the source, can be written."""
    pycache = package_dir / "__pycache__"
    target = pycache if pycache.is_dir() else package_dir
    return os.access(target, os.W_OK | os.X_OK)


def choose_cache_dir(
    package_dir: Path = PACKAGE_DIR,
    environ: Mapping[str, str] = os.environ,
    in_tree_writable: Callable[[Path], bool] = _in_tree_writable,
    is_writable: Callable[[Path], bool] = writable_dir,
) -> Path | None:
    """The folder numba should cache into, or None when numba's own choice works (or the user chose one).

    The user's NUMBA_CACHE_DIR always wins; otherwise the first writable of $XDG_CACHE_HOME/offlinepack/numba,
    ~/.cache/offlinepack/numba and a per-user temporary folder. None as well when nothing is writable.
    """
    if environ.get("NUMBA_CACHE_DIR") or in_tree_writable(package_dir):
        return None
    candidates = []
    if environ.get("XDG_CACHE_HOME"):
        candidates.append(Path(environ["XDG_CACHE_HOME"]) / "offlinepack" / "numba")
    if environ.get("HOME"):
        candidates.append(Path(environ["HOME"]) / ".cache" / "offlinepack" / "numba")
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    candidates.append(Path(tempfile.gettempdir()) / f"offlinepack-numba-{user}")
    return next((candidate for candidate in candidates if is_writable(candidate)), None)


def _configure_cache() -> bool:
    """Point numba at a writable cache folder if needed; False when there is no writable place at all."""
    cache_dir = choose_cache_dir()
    if cache_dir is None:
        return bool(os.environ.get("NUMBA_CACHE_DIR")) or _in_tree_writable(PACKAGE_DIR)
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba was imported before us and has read its settings already
        config.CACHE_DIR = str(cache_dir)
    return True


CACHE_USABLE = _configure_cache()

try:
    import numba
except ImportError as error:  # pragma: no cover - depends on the environment
    raise OfflinepackError(
        "scoring needs numba, which is not installed",
        hint="pip install numba (a Kaggle GPU image has it already)",
    ) from error


try:  # count leading zeros of an integer, compiled to one instruction
    from numba.cpython.unsafe.numbers import leading_zeros
except ImportError:  # pragma: no cover - an older or newer numba without this intrinsic

    @numba.njit(cache=CACHE_USABLE)
    def leading_zeros(word: Any) -> int:
        count = 0
        probe = numba.uint64(1) << numba.uint64(63)
        while count < 64 and not (word & probe):
            count += 1
            probe >>= numba.uint64(1)
        return count


def njit(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """`numba.njit(cache=True, **options)`, used as `@njit` or `@njit(...)`.

    Without any writable folder it still compiles, only without caching.
    """
    options.setdefault("cache", CACHE_USABLE)

    def decorate(inner: Callable[..., Any]) -> Any:
        return numba.njit(**options)(inner)

    return decorate(function) if function is not None else decorate
