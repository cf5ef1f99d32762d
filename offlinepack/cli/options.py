"""Options more than one command takes, declared once so they read and default the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.errors import OfflinepackError

from offlinepack.kaggle import DEFAULT_ROOT, ROOT_ENV

# resolved by offlinepack.kaggle.kaggle_root(flag): the flag, else the variable, else /kaggle
KaggleRootOption = Annotated[Optional[Path], typer.Option(
    "--kaggle-root", help=f"Root of the Kaggle layout [${ROOT_ENV}, else {DEFAULT_ROOT}].")]


def split_values(values: list[str] | None, kind: type, flag: str) -> list | None:
    """`--folds 0,1 --folds 2` -> [0, 1, 2]."""
    if not values:
        return None
    out = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                try:
                    out.append(kind(part.strip()))
                except ValueError:
                    what = "integers" if kind is int else "numbers"
                    raise OfflinepackError(f"{flag} {value}: {part!r} is not a valid {kind.__name__}",
                                           hint=f"{flag} takes comma-separated {what}, e.g. {flag} 0,1") from None
    return out
