"""`offlinepack runs` (placeholder until its issue lands: the owner replaces this module)."""

from __future__ import annotations

import typer

from offlinepack.cli.output import reports_errors
from offlinepack.errors import OfflinepackError

app = typer.Typer(help="List runs from the ledger and attach leaderboard scores.", invoke_without_command=True)


@app.callback()
@reports_errors
def runs() -> None:
    """Not available yet."""
    raise OfflinepackError("`offlinepack runs` is not available in this build")
