"""Zip the masks atomically: temp file, validate, then rename over submission.zip.

An existing submission.zip is only ever replaced by a complete zip that passed validation; any
failure (disk full, a bad mask, an interrupted write) leaves it untouched and removes the temp file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offlinepack.atomic import replacing, resolve_output
from offlinepack.errors import OfflinepackError
from offlinepack.hashing import sha256_file
from offlinepack.submission.validate import ValidationReport, validate_submission


class SubmissionError(OfflinepackError):
    """The zip could not be written or did not validate; the previous zip is intact."""


@dataclass(frozen=True)
class ZipResult:
    path: Path
    sha256: str
    size: int
    entries: int
    report: ValidationReport


def zip_destination(output: Path) -> Path:
    """Where the zip's bytes go: a symlink is written through (its target is replaced, the link stays); a folder,
    device, FIFO or socket is refused, since renaming over it would turn it into a plain file."""
    try:
        return resolve_output(output, hint="pass -o with a path to a regular file (e.g. /kaggle/working/submission.zip)")
    except OfflinepackError as error:
        raise SubmissionError(error.message, hint=error.hint) from None


def _write_zip(mask_files: Mapping[str, Path], target: Path) -> None:
    # The TIFF pages are already deflated: storing them costs nothing in size and saves time.
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for ident, path in mask_files.items():
            archive.write(path, arcname=f"{ident}.tif")


def write_submission_zip(
    mask_files: Mapping[str, Path],
    output: Path,
    expected: Any,
    *,
    writer: Callable[[Mapping[str, Path], Path], None] = _write_zip,
) -> ZipResult:
    """Zip `{id: mask.tif}` into `output` via a temp name in the same folder, validated before the rename.

    `expected` is what validate_submission takes (id -> shape, or an InputSet). `writer` is the step
    that writes the temp zip (a parameter so a test can make it fail like a full disk does).
    """
    output = Path(output)
    real = zip_destination(output)  # through a link; never onto a device
    tmp = real
    try:
        with replacing(real) as tmp:
            writer(mask_files, tmp)
            report = validate_submission(tmp, expected)
            if not report.valid:
                raise SubmissionError(
                    f"the new zip failed validation, {output} left unchanged",
                    problems=report.problems,
                    hint="rerun with --overwrite to recompute every mask in the work folder; if it fails again, "
                         "report it as a bug",
                )
            digest = sha256_file(tmp)
            size = tmp.stat().st_size
    except OSError as error:
        raise SubmissionError(
            f"could not write {tmp.name} in {output.parent}: {error.strerror or error}",
            hint="free disk space or pick another output with -o; the previous submission.zip is unchanged",
        ) from error
    return ZipResult(output, digest, size, len(mask_files), report)
