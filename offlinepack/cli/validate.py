"""`offlinepack validate ZIP`: check a submission the way the scorer reads it.

Exit codes: 0 valid (warnings allowed), 1 invalid (one line per problem), 2 could not check
(ZIP or the --input folder missing, or no reference for the ids and shapes: no --input, no competition
inputs under the Kaggle root and no ledger record of this zip beside it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from offlinepack import exit_codes
from offlinepack import kaggle
from offlinepack.cli.output import console, err_console, print_json, reports_errors
from offlinepack.errors import OfflinepackError


def _expected_from_ledger(zip_path: Path) -> tuple[dict[str, tuple[int, ...]] | None, str]:
    """Without source volumes, the run that wrote this exact zip (found by sha256 in the ledger beside it)
    still knows every id and (Z,H,W) it had to produce."""
    from offlinepack.hashing import sha256_file
    from offlinepack.ledger import read_ledger, recorded_shapes, run_for_zip

    ledger = kaggle.ledger_in(zip_path.parent)
    if zip_path.is_file() and ledger.is_file():
        run = run_for_zip(read_ledger(ledger), sha256_file(zip_path))
        if run is not None and recorded_shapes(run):
            return recorded_shapes(run), (f"no competition inputs found: checked ids and shapes against run "
                                          f"{run.run_id}, which wrote this zip ({ledger})")
    return None, ("no competition inputs found and no ledger record of this zip: checked each entry alone, "
                  "not ids or shapes (pass --input DIR)")


@reports_errors
def validate(
    zip_path: Annotated[Path, typer.Argument(metavar="ZIP", help="The submission.zip to check.", exists=True, dir_okay=False)],
    input_dir: Annotated[Optional[Path], typer.Option("--input", "-i", help="Competition folder (test_images/ + test.csv) or a folder of <id>.tif; default: searched under /kaggle/input.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check submission.zip against the competition's rules without scoring it.

    Every test id exactly once as <id>.tif at the root, each a 3D uint8 {0,1} TIFF of the source shape
    that Pillow reads page by page; no other entries. Exit 0 valid, 1 invalid, 2 could not check (no
    reference for the ids and shapes). Entries larger than the largest plausible mask are refused unread."""
    from offlinepack.submission import validate_submission
    from offlinepack.volumes import find_inputs

    if not zip_path.is_file():  # a FIFO would block the read; a device is not a submission
        raise OfflinepackError(f"{zip_path} is not a regular file (a device, FIFO or socket): nothing to check",
                               hint="pass the path of the submission.zip file itself")
    expected = None
    note = None
    if input_dir is not None:
        expected = find_inputs(input_dir, kaggle_root=kaggle.kaggle_root())
    else:
        try:
            expected = find_inputs(None, kaggle_root=kaggle.kaggle_root())
        except OfflinepackError:
            expected, note = _expected_from_ledger(zip_path)
    report = validate_submission(zip_path, expected)
    code = exit_codes.DEGRADED if not report.valid else exit_codes.OK if report.complete else exit_codes.FAILED
    if as_json:
        print_json({**report.to_dict(), "note": note, "exit_code": code})
        raise typer.Exit(code)
    if note:
        err_console.print(f"note: {note}", markup=False)
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", markup=False)
    for problem in report.problems:
        console.print(f"problem: {problem}", markup=False)
    if report.complete:
        console.print(f"valid: {zip_path} ({len(report.entries)} mask(s))", markup=False)
    elif report.valid:
        for what in report.unchecked:
            console.print(f"unchecked: {what}", markup=False)
        console.print(f"could not check: {zip_path}: {len(report.entries)} mask(s) readable, but ids and shapes "
                      f"were not checked", markup=False)
        err_console.print("hint: pass --input with the competition folder (test_images/ + test.csv), or keep the "
                          "offlinepack-runs.jsonl of the run that wrote this zip beside it", markup=False)
    else:
        console.print(f"invalid: {zip_path}: {len(report.problems)} problem(s)", markup=False)
        err_console.print("hint: the scorer needs one <id>.tif per test volume at the zip's root, each a multipage "
                          "uint8 {0,1} TIFF of the source's (Z,H,W); `offlinepack run` writes such a zip", markup=False)
    raise typer.Exit(code)
