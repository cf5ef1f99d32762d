"""`offlinepack build LOCK --target T -o DIR`: a Kaggle-ready offline wheelhouse from a lock."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from offlinepack.cli.output import console, err_console, print_json, reports_errors, with_other_problems
from offlinepack.cli.progress import FileProgress
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import resolve_target
from offlinepack.pylock import read_lock
from offlinepack.units import format_size
from offlinepack.wheelhouse import BuildOptions, BuildResult, build_wheelhouse
from offlinepack.wheelhouse.dataset import dataset_metadata


def _report(result: BuildResult) -> None:
    table = Table(title=f"wheelhouse {result.output} for {result.target}", title_justify="left")
    table.add_column("package")
    table.add_column("version")
    table.add_column("size", justify="right")
    table.add_column("share", justify="right")
    optional = {f.package for f in result.files if f.optional}
    for row in result.size.rows:
        name = f"{row.package} (optional)" if row.package in optional else row.package
        table.add_row(name, row.version, format_size(row.size), f"{row.share:.0%}")
    table.add_section()
    table.add_row("total", f"{len(result.size.rows)} packages", format_size(result.size.total), "")
    console.print(table)
    fetched = f"{len(result.downloaded)} file(s) downloaded ({format_size(result.downloaded_bytes)})"
    sdists = sum(1 for f in result.files if f.origin == "built")
    built = f", {len(result.built)} built from sdist ({', '.join(result.built)})" if result.built else ""
    if sdists > len(result.built):
        built += f", {sdists - len(result.built)} sdist wheel(s) reused from the cache"
    elif not sdists:
        built += ", no sdists to build"
    console.print(f"largest: {result.size.largest}; {fetched}{built}; {result.seconds:.2f} s", markup=False)
    if result.skipped:
        console.print(f"not for this target (marker false): {', '.join(result.skipped)}", markup=False)
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    console.print(f"next: kaggle datasets create -p {result.output}", markup=False)


@reports_errors
def build(
    lock: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="pylock.toml written by `offlinepack lock`.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Built-in name (kaggle-gpu), target JSON file, or "
                                        "folder with env.json + pip-inspect.json.")],
    output: Annotated[Path, typer.Option("-o", "--output", file_okay=False, help="Wheelhouse folder to create.")],
    dataset_id: Annotated[str | None, typer.Option("--dataset-id", help="Kaggle dataset id owner/slug "
                                                   "(default: $KAGGLE_USERNAME/<folder name>).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Dataset title, 6-50 characters.")] = None,
    license: Annotated[str, typer.Option("--license", help="Dataset license (exactly one).")] = "CC0-1.0",
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", file_okay=False, help="Download cache (default: "
                                                   "$OFFLINEPACK_CACHE, else $XDG_CACHE_HOME/offlinepack, else "
                                                   "~/.cache/offlinepack).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder (only once the new "
                                        "one is complete, and only an empty one or a wheelhouse built before)."
                                        )] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=64, help="Parallel downloads.")] = 8,
    index_url: Annotated[str | None, typer.Option("--index-url", help="Index (PEP 503 simple URL) to find a portable "
                                                  "lock's files on (default: $OFFLINEPACK_INDEX_URL, $UV_INDEX_URL, "
                                                  "$PIP_INDEX_URL, else pip's default index).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
) -> None:
    """Download (through the cache), verify and build the wheels a target lacks into a flat Kaggle dataset folder."""
    try:
        resolved = resolve_target(target)
    except OfflinepackError as error:
        raise with_other_problems(
            error, f"cannot build a wheelhouse from {lock}", lambda: read_lock(lock),
            lambda: dataset_metadata(dataset_id=dataset_id, title=title, license=license, default_slug=output.name,
                                     target_name=target, environ=os.environ)) from None
    options = BuildOptions(lock=lock, target=resolved, output=output, dataset_id=dataset_id,
                           title=title, license=license, cache_dir=cache_dir, force=force, jobs=jobs,
                           index_urls=(index_url,) if index_url else None, environ=dict(os.environ))
    with FileProgress(err_console, enabled=not as_json) as progress:
        result = build_wheelhouse(options, progress=progress)
    if as_json:
        print_json(result.to_dict())
    else:
        _report(result)
