"""Distributions that only back-port a standard-library module: a target whose Python has the module needs none.

Old packages still declare them (batchgenerators → unittest2 → traceback2 → linecache2, argparse), so a lock
would ship them to a kernel whose Python has had the module for a decade. Only pure back-ports are listed:

- same import name as the standard-library module (argparse, enum34's `enum`, ...): the standard library comes
  first on sys.path, so the installed copy is never imported; shipping it is dead weight (enum34 even breaks
  tools that walk site-packages);
- unittest2, traceback2, linecache2: the Python 2.7/3.5 unittest/traceback/linecache under another name. Their
  requirers use them in test suites; an `import unittest2` at run time would fail without them.

Not listed, on purpose: importlib-metadata, importlib-resources, typing-extensions, contextlib2, mock,
backports.* (they add API beyond the standard library or are imported under their own name by design).
`runtime/bootstrap.py` keeps the same table (it cannot import offlinepack); a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name


@dataclass(frozen=True, kw_only=True, slots=True)
class StdlibBackport:
    name: str  # the distribution
    module: str  # the standard-library module it back-ports
    since: tuple[int, int]  # the Python that has that module

    @property
    def since_text(self) -> str:
        return f"{self.since[0]}.{self.since[1]}"


STDLIB_BACKPORTS: tuple[StdlibBackport, ...] = (
    StdlibBackport(name="argparse", module="argparse", since=(3, 2)),  # also 2.7
    StdlibBackport(name="asyncio", module="asyncio", since=(3, 4)),  # the 2014 Tulip release on the index
    StdlibBackport(name="contextvars", module="contextvars", since=(3, 7)),
    StdlibBackport(name="dataclasses", module="dataclasses", since=(3, 7)),
    StdlibBackport(name="enum34", module="enum", since=(3, 4)),
    StdlibBackport(name="futures", module="concurrent.futures", since=(3, 2)),
    StdlibBackport(name="ipaddress", module="ipaddress", since=(3, 3)),
    StdlibBackport(name="pathlib", module="pathlib", since=(3, 4)),
    StdlibBackport(name="statistics", module="statistics", since=(3, 4)),
    StdlibBackport(name="typing", module="typing", since=(3, 7)),  # the last back-port release matches 3.7's
    StdlibBackport(name="unittest2", module="unittest", since=(3, 5)),
    StdlibBackport(name="traceback2", module="traceback", since=(3, 5)),
    StdlibBackport(name="linecache2", module="linecache", since=(3, 5)),
)


def _minor(python_version: str) -> tuple[int, int] | None:
    parts = python_version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def stdlib_backports(python_version: str) -> dict[str, StdlibBackport]:
    """{canonical name: back-port} of the distributions this Python ("3.12.3") needs none of."""
    have = _minor(python_version)
    if have is None:
        return {}
    return {canonicalize_name(b.name): b for b in STDLIB_BACKPORTS if have >= b.since}
