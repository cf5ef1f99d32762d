"""`offlinepack demo-set DIR`: a labelled synthetic set for trying the tuning loop with the demo model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from offlinepack.cli.output import console, reports_errors


@reports_errors
def demo_set(
    folder: Annotated[Path, typer.Argument(help="Where to write train_images/ and train_labels/.", file_okay=False)],
    count: Annotated[int, typer.Option("--count", help="How many volumes.", min=2)] = 6,
    size: Annotated[int, typer.Option("--size", help="Edge of each cubic volume, in voxels.", min=16)] = 64,
) -> None:
    """Write a labelled synthetic set (seeded, same every time) for the demo model."""
    from offlinepack.demo.labelled import write_labelled_set

    write_labelled_set(folder, count=count, shape=(size, size, size))
    console.print(f"wrote {count} volume(s) of {size}^3 with labels: {folder}/train_images, {folder}/train_labels",
                  markup=False)
