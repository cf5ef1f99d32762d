"""Options more than one command takes, declared once so they read and default the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.kaggle import DEFAULT_ROOT, ROOT_ENV

# resolved by offlinepack.kaggle.kaggle_root(flag): the flag, else the variable, else /kaggle
KaggleRootOption = Annotated[Optional[Path], typer.Option(
    "--kaggle-root", help=f"Root of the Kaggle layout [${ROOT_ENV}, else {DEFAULT_ROOT}].")]
