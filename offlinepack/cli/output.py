"""Consoles and the error boundary shared by every command module."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from offlinepack import exit_codes
from offlinepack.errors import OfflinepackError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])
FALLBACK_HINT = "fix what the error names and run the command again (`--help` lists every option)"


def print_error(error: OfflinepackError) -> None:
    """`error:` one line per problem, then `hint:`; plain text so logs and tests read it as is."""
    for line in error.lines():
        err_console.print(f"error: {line}", markup=False)
    # every error ends with a hint (README, Guarantees); a specific one where the code knows the fix
    err_console.print(f"hint: {error.hint or FALLBACK_HINT}", markup=False)


def reports_errors(func: F) -> F:
    """Wrap a command so an OfflinepackError becomes error/hint lines and exit code FAILED.

    Anything else is a bug and keeps its traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except OfflinepackError as error:
            print_error(error)
            raise typer.Exit(exit_codes.FAILED) from None

    return wrapper  # type: ignore[return-value]


def with_other_problems(first: OfflinepackError, message: str, *checks: Callable[[], object]) -> OfflinepackError:
    """`first` plus whatever the other input checks find, so one run lists every problem (a bad --target
    and a bad requirements file at once), each check's hint kept."""
    problems, hints = list(first.lines()), [first.hint]
    for check in checks:
        try:
            check()
        except OfflinepackError as error:
            problems += error.problems or [error.message]
            hints.append(error.hint)
    if len(problems) == len(first.lines()):
        return first
    return OfflinepackError(message, problems=problems, hint="; ".join(dict.fromkeys(h for h in hints if h)) or None)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    typer.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
