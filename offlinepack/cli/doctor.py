"""`offlinepack doctor`: is this kernel ready? One line per check, a fix for each that is not ✓."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.options import KaggleRootOption
from offlinepack.cli.output import console, print_json, reports_errors

_MARKS = {"ok": "[green]✓[/green]", "warn": "[yellow]![/yellow]", "fail": "[red]✗[/red]"}


@reports_errors
def doctor(
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", help="Where outputs go (writability, free space) [where `offlinepack run` writes: KAGGLE_ROOT/working in a kernel, else the current folder].")] = None,
    input_dir: Annotated[Optional[Path], typer.Option("--input", help="Competition folder (test_images/) or folder of <id>.tif.")] = None,
    kaggle_root: KaggleRootOption = None,
    wheels: Annotated[Optional[list[Path]], typer.Option("--wheels", help="A wheelhouse folder (repeatable).")] = None,
    require_gpu: Annotated[bool, typer.Option("--require-gpu", help="No CUDA is a failure, not a warning.")] = False,
) -> None:
    """Check the kernel: packages vs the wheelhouse, Python tags, torch/CUDA/GPUs/cuDNN, TIFF readers, output, input.

    Exit 0 ready, 1 ready with degradations, 2 not ready. Every check runs even after a failure.
    """
    from offlinepack import kaggle
    from offlinepack.doctor import DoctorOptions, run_checks

    kaggle_root = kaggle.kaggle_root(kaggle_root)
    if output_dir is None:  # the folder `offlinepack run` would write to, not /kaggle/working everywhere
        output_dir = kaggle.output_dir(kaggle_root)
    report = run_checks(DoctorOptions(output_dir=output_dir, input_dir=input_dir, kaggle_root=kaggle_root,
                                      wheel_dirs=tuple(wheels or ()), require_gpu=require_gpu))
    if json_output:
        print_json(report.to_dict())
    else:
        for check in report.checks:
            console.print(f"{_MARKS[check.status]} {check.name}: ", end="")
            console.print(check.detail, markup=False)
            if check.fix and check.status != "ok":
                console.print(f"    fix: {check.fix}", markup=False)
        verdict = {0: "ready", 1: "ready with degradations", 2: "not ready"}[report.exit_code]
        console.print(f"{verdict} (exit {report.exit_code})", markup=False)
    raise typer.Exit(report.exit_code)
