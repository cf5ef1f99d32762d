"""`offlinepack rehearse KERNEL_DIR --target T --dataset owner/slug=PATH ...`: the kernel replayed before upload.

Exit codes: 0 ready to push, 1 works with warnings, 2 would fail in the kernel.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack.cli.output import console, err_console, print_json, reports_errors

_MARK = {"ok": "✓", "warn": "!", "fail": "✗", "error": "✗", "skipped": "-"}


@reports_errors
def rehearse(
    kernel_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="The folder `kernel init` wrote.")],
    target: Annotated[str, typer.Option("--target", "-t", help="The kernel as a target: a snapshot JSON "
                                        "(`bootstrap.py snapshot`), a capture folder or a built-in name.")],
    datasets: Annotated[Optional[list[str]], typer.Option("--dataset", help="owner/slug=LOCAL_FOLDER for each "
                                                          "attached dataset (wheelhouse, models). Repeat.")] = None,
    competition_data: Annotated[Optional[Path], typer.Option("--competition-data", file_okay=False, help="Local copy "
                                                             "of the competition's data (test_images/, test.csv).")] = None,
    static_only: Annotated[bool, typer.Option("--static-only", help="Only the static checks (seconds).")] = False,
    work: Annotated[Optional[Path], typer.Option("--work", file_okay=False, help="Rehearsal folder (kernel Python, "
                                                 "/kaggle/working); default: a new temporary folder, kept.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds allowed per cell.")] = 1800,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Rehearse the kernel offline under a local /kaggle layout: static checks, then the notebook's cells
    with a real Jupyter kernel.

    The static checks cover the wheels for the target, bootstrap's plan, every Requires-Dist, the attached
    sources, paths and models; then the cells run in order, offline, under /kaggle as Kaggle lays it out,
    the kernel's offlinepack is checked to be the wheelhouse's, and the submission is validated. Exit 0
    ready, 1 warnings, 2 would fail."""
    from offlinepack.kernel_kit.rehearse import parse_dataset_args, rehearse_kernel
    from offlinepack.kernel_target import resolve_target

    result = rehearse_kernel(kernel_dir, target=resolve_target(target), datasets=parse_dataset_args(datasets or []),
                             competition_data=competition_data, dynamic=not static_only, work=work, timeout=timeout,
                             environ=os.environ)
    if as_json:
        print_json(result.to_dict())
        raise typer.Exit(result.exit_code)
    console.print("static checks:", markup=False)
    for check in result.checks:
        console.print(f"  {_MARK[check.status]} {check.name}: {check.detail}", markup=False)
        if check.fix and check.status != "ok":
            console.print(f"      fix: {check.fix}", markup=False)
    console.print(f"cells ({result.isolation}{', Python ' + result.python if result.python else ''}):", markup=False)
    for cell in result.cells:
        console.print(f"  {_MARK[cell.status]} cell {cell.cell} {cell.seconds:6.1f} s  {cell.first_line}", markup=False)
        if cell.status == "error":
            for line in cell.tail:
                console.print(f"      | {line}", markup=False)
    if result.shipped is not None:
        check = result.shipped
        console.print(f"  {_MARK[check.status]} {check.name}: {check.detail}", markup=False)
    if result.validation is not None:
        valid = result.validation.get("valid")
        console.print(f"submission: {'valid' if valid else 'INVALID'} {result.validation.get('path')}", markup=False)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    failure = result.failure
    verdict = {0: "ready to push", 1: "works with warnings", 2: "would fail in the kernel"}[result.exit_code]
    console.print(f"{verdict} ({result.seconds.get('total', 0):.1f} s"
                  f"{', rehearsal folder ' + str(result.work) if result.work else ''})", markup=False)
    if failure:
        console.print(f"first failure: {failure[0]}", markup=False)
        if failure[1]:
            console.print(f"fix: {failure[1]}", markup=False)
    raise typer.Exit(result.exit_code)
