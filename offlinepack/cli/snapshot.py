"""`offlinepack snapshot -o FILE`: write the running interpreter as a target file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from offlinepack.cli.output import console, reports_errors
from offlinepack.kernel_target import dump_target, snapshot_current


@reports_errors
def snapshot(
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="Target JSON file to write.")],
    name: Annotated[str, typer.Option("--name", help="Name stored in the file (shown to users).")] = "snapshot",
) -> None:
    """Capture this interpreter (tags, markers, installed distributions) as a target file for `--target`."""
    target = snapshot_current(name=name)
    dump_target(target, output)
    console.print(f"wrote {output}: {target.implementation} {target.python_version} {target.system}-{target.machine}, "
                  f"{len(target.tags)} tags, {len(target.installed)} installed distributions", markup=False)
