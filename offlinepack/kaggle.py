"""The Kaggle layout: its root, whether this is a kernel, and where outputs go by default.

The run ledger lives beside the output (`LEDGER_NAME` in `output_dir()` by default).

A kernel is recognised by `<root>/working`: every decision made from it is about where to write (the
default output, the masks' work folder, the ledger, bootstrap's fallback install folder), and
`working/` is the one writable folder Kaggle guarantees. A machine that merely holds a copy of
`<root>/input` (datasets mirrored for local tests) has nowhere to put outputs there, so it is not a
kernel. bootstrap.py (stdlib-only, not importing this) uses the same `working/` rule for its fallback.

Host facts (the environment, the cwd) are parameters so tests can be any machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

ROOT_ENV = "OFFLINEPACK_KAGGLE_ROOT"
DEFAULT_ROOT = Path("/kaggle")
SUBMISSION_NAME = "submission.zip"
MASKS_SUFFIX = "-masks"  # the work folder of `out.zip` is `out-masks/`, beside it
LEDGER_NAME = "offlinepack-runs.jsonl"  # the run ledger's file name (offlinepack.ledger reads and appends it)


def kaggle_root(flag: Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """--kaggle-root when given, else $OFFLINEPACK_KAGGLE_ROOT (when not empty), else /kaggle."""
    if flag is not None:
        return Path(flag)
    return Path(environ.get(ROOT_ENV) or DEFAULT_ROOT)


def in_kernel(root: Path = DEFAULT_ROOT) -> bool:
    return (Path(root) / "working").is_dir()


def output_dir(root: Path = DEFAULT_ROOT, cwd: Path | None = None) -> Path:
    """Where outputs go by default: `<root>/working` in a kernel, else the current folder."""
    return Path(root) / "working" if in_kernel(root) else Path(cwd or Path.cwd())


def default_output(root: Path = DEFAULT_ROOT, cwd: Path | None = None) -> Path:
    return output_dir(root, cwd) / SUBMISSION_NAME


def work_dir(output: Path) -> Path:
    """The masks of a run writing `output` are kept here between runs (resume)."""
    output = Path(output)
    return output.parent / f"{output.stem}{MASKS_SUFFIX}"


def ledger_in(folder: Path) -> Path:
    """The run ledger kept in `folder`: beside a run's output, or the calibration's."""
    return Path(folder) / LEDGER_NAME


# Kaggle's names for datasets, models and kernels: `owner/slug`
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
OWNER = re.compile(r"^[A-Za-z0-9_-]+$")


def slug_problems(slug: str, what: str, bounds: tuple[int, int]) -> list[str]:
    """Why Kaggle would refuse `slug` (length within `bounds`, lower-case letters, digits and inner '-')."""
    low, high = bounds
    if not low <= len(slug) <= high:
        return [f"{what} slug {slug!r} has {len(slug)} characters; Kaggle needs {low} to {high}"]
    if not SLUG.match(slug):
        return [f"{what} slug {slug!r} may hold only lower-case letters, digits and '-', and must not start or end "
                "with '-'"]
    return []


def id_problems(ident: str, what: str, form: str, bounds: tuple[int, int]) -> list[str]:
    """Why Kaggle would refuse the `owner/slug` id of a `what` ("dataset", "kernel"); `form` shows a good one."""
    owner, sep, slug = ident.partition("/")
    if not sep or not owner or "/" in slug:
        return [f"{what} id {ident!r} must be {form}"]
    problems = [] if OWNER.match(owner) else [
        f"{what} id owner {owner!r} must be a Kaggle user name (letters, digits, - and _)"]
    return problems + slug_problems(slug, what, bounds)
