"""`offlinepack build` (placeholder until its issue lands: the owner replaces this module)."""

from __future__ import annotations

import typer

from offlinepack.cli.output import reports_errors
from offlinepack.errors import OfflinepackError


@reports_errors
def build() -> None:
    """Not available yet."""
    raise OfflinepackError("`offlinepack build` is not available in this build")
