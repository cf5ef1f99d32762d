"""`offlinepack targets [--json]`: list the built-in targets."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from offlinepack.cli.output import console, print_json, reports_errors
from offlinepack.kernel_target import builtin_names, load_builtin


@reports_errors
def targets(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List built-in targets (use a name with `--target`, or a snapshot file / folder instead)."""
    rows = []
    for name in builtin_names():
        target = load_builtin(name)
        rows.append({
            "name": name,
            "python": f"{target.implementation} {target.python_version}",
            "platform": f"{target.system}-{target.machine} {target.libc or ''} {target.libc_version or ''}".strip(),
            "installed": len(target.installed),
            "approximate": target.approximate,
            "description": target.description,
        })
    if as_json:
        print_json(rows)
        return
    table = Table()
    # the name is what users type after --target: never cut; the rest may wrap on a narrow terminal
    table.add_column("name", no_wrap=True, min_width=max((len(row["name"]) for row in rows), default=4))
    for column in ("python", "platform", "installed", "approximate"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["python"], row["platform"], str(row["installed"]),
                      "yes" if row["approximate"] else "no")
    console.print(table)
    console.print("Approximate targets are a best guess. For an exact one, run "
                  "`python bootstrap.py snapshot -o kernel.json` in the kernel, then use `--target kernel.json`.",
                  markup=False)
