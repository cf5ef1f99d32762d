"""`offlinepack lock REQ... --target T -o pylock.toml`: resolve for a kernel, holding what it has."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from offlinepack.cli.output import console, err_console, print_json, reports_errors, with_other_problems
from offlinepack.errors import OfflinepackError
from offlinepack.kernel_target import resolve_target
from offlinepack.lock import DEFAULT_OPTIONAL, LockOptions, lock_requirements, read_requirements
from offlinepack.wheelhouse.index import INDEX_ENV


@reports_errors
def lock(
    requirements: Annotated[list[Path], typer.Argument(
        help="requirements.in files (one requirement per line, `-r` includes) or a pyproject.toml.")],
    target: Annotated[str, typer.Option("--target", "-t", help="Built-in name (see `offlinepack targets`), "
                                        "a snapshot JSON, or a folder with env.json + pip-inspect.json.")],
    output: Annotated[Path, typer.Option("-o", "--output", dir_okay=False, help="pylock.toml to write.")] = Path(
        "pylock.toml"),
    index_url: Annotated[str | None, typer.Option("--index-url", help="Package index (PEP 503 simple URL; default: "
                                                  "$OFFLINEPACK_INDEX_URL, $UV_INDEX_URL, $PIP_INDEX_URL, as `build` "
                                                  "looks, else uv's default index).")] = None,
    find_links: Annotated[list[Path] | None, typer.Option("--find-links", help="Folder of extra wheels/sdists.")
                          ] = None,
    allow_replace: Annotated[list[str] | None, typer.Option(
        "--allow-replace", help="Let this installed package of the target change version (repeatable).")] = None,
    optional: Annotated[list[str] | None, typer.Option(
        "--optional", help=f"Mark a package optional in the kernel (repeatable; default: "
                           f"{', '.join(DEFAULT_OPTIONAL)}).")] = None,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", help="uv cache folder.")] = None,
    portable: Annotated[bool, typer.Option(
        "--portable", help="Write file names and hashes, not download URLs: `offlinepack build` finds the files on "
                           "the index (for locks kept in a repository or used behind a mirror).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary on stdout.")] = False,
) -> None:
    """Lock requirements for a target kernel: its markers and wheel tags, its installed versions held."""
    try:
        resolved = resolve_target(target)
    except OfflinepackError as error:
        raise with_other_problems(error, "cannot lock: bad input", lambda: read_requirements(requirements)) from None
    # the same index `build` uses (a mirror set for pip only would otherwise lock against another index)
    index_url = index_url or next((os.environ[k] for k in INDEX_ENV if os.environ.get(k)), None)
    result = lock_requirements(LockOptions(
        requirements=tuple(requirements), target=resolved, output=output, index_url=index_url,
        find_links=tuple(find_links or ()), allow_replace=tuple(allow_replace or ()),
        optional=tuple(optional) if optional else DEFAULT_OPTIONAL, cache_dir=cache_dir,
        portable=portable))
    if as_json:
        print_json({
            "output": str(result.output), "target": result.target,
            "packages": [{"name": p.name, "version": p.version, "kind": p.kind} for p in result.packages],
            "provided": [{"name": n, "version": v} for n, v in result.provided],
            "replaced": [{"name": n, "target_version": o, "version": v} for n, o, v in result.replaced],
            "held_back": [str(h) for h in result.held_back], "optional": list(result.optional),
            "dropped_backports": [{"name": d.name, "version": d.version, "stdlib_module": d.backport.module,
                                   "python": d.backport.since_text} for d in result.dropped],
            "warnings": list(result.warnings)})
        return
    for warning in result.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    if resolved.approximate:
        err_console.print(f"note: target {resolved.name} is approximate; for exact versions snapshot the kernel "
                          "(`python bootstrap.py snapshot -o kernel.json`) and pass --target kernel.json",
                          markup=False)
    for package in result.packages:
        extra = " (optional)" if package.name in result.optional else ""
        console.print(f"  + {package.name} {package.version} [{package.kind}]{extra}", markup=False)
    for name, old, new in result.replaced:
        console.print(f"  ~ {name} {old} -> {new} (replaces the target's)", markup=False)
    for item in result.held_back:
        console.print(f"note: {item}", markup=False)
    for item in result.dropped:
        console.print(f"  - {item}", markup=False)
    dropped = f", {len(result.dropped)} standard-library back-ports dropped" if result.dropped else ""
    console.print(f"wrote {result.output}: {len(result.packages)} packages to ship, "
                  f"{len(result.provided)} provided by target {result.target}{dropped}", markup=False)
