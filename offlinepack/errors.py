"""One exception family for everything a user can fix; the CLI turns it into `error:`/`hint:` lines."""

from __future__ import annotations

from collections.abc import Iterable


class OfflinepackError(Exception):
    """A problem the user can fix. `problems` holds one line per problem when there are several."""

    def __init__(self, message: str, hint: str | None = None, problems: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.problems = tuple(problems)

    def lines(self) -> tuple[str, ...]:
        """The lines to show after `error:`: the message, then each problem."""
        return (self.message, *self.problems)


def not_utf8(path: object, error: UnicodeDecodeError) -> str:
    """The problem line for a text file that is not UTF-8 (PowerShell's `>` writes UTF-16)."""
    utf16 = error.object[:2] in (b"\xff\xfe", b"\xfe\xff")
    return (f"{path}: not UTF-8 text (byte {error.start})"
            + (": it is UTF-16, as Windows PowerShell's `>` writes" if utf16 else "") + "; save it as UTF-8")


def raise_if_problems(problems: list[str], message: str, hint: str | None = None) -> None:
    """Collect-then-fail: raise one error listing every problem found, or do nothing."""
    if problems:
        raise OfflinepackError(message, hint=hint, problems=problems)
