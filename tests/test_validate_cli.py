"""`offlinepack validate ZIP`: exit codes, JSON, and checking without the competition inputs."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from tests.support.cli import SMALL
from tests.support.cli import invoke as _invoke
from tests.support.cli import write_competition as _competition


def test_validate_cli_exit_codes_and_json(tmp_path: Path, env: dict[str, str]) -> None:
    data = _competition(tmp_path / "comp", {"11": SMALL})
    good = tmp_path / "good.zip"
    from offlinepack.submission import write_mask_tiff

    mask = write_mask_tiff(np.zeros(SMALL, np.uint8), tmp_path / "m.tif")
    with zipfile.ZipFile(good, "w") as archive:
        archive.write(mask, "11.tif")
    assert _invoke(["validate", str(good), "--input", str(data)], env).exit_code == 0
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.write(mask, "nested/11.tif")
        archive.writestr("extra.txt", "x")
    result = _invoke(["validate", str(bad), "--input", str(data)], env)
    assert result.exit_code == 1
    assert "problem: nested/11.tif: nested entry" in result.output and "problem: 11.tif: missing" in result.output
    report = json.loads(_invoke(["validate", str(bad), "--input", str(data), "--json"], env).stdout)
    assert report["valid"] is False and len(report["problems"]) == 3
    assert _invoke(["validate", str(good), "--input", str(tmp_path / "nowhere")], env).exit_code == 2
    # no zip there at all is a wrong path (could not check, 2), not an invalid submission (1)
    absent = _invoke(["validate", str(tmp_path / "typo.zip")], env)
    assert absent.exit_code == 2 and "does not exist" in absent.output
    assert _invoke(["validate", str(tmp_path)], env).exit_code == 2  # a folder, not a zip


def test_validate_without_a_reference_says_it_could_not_check(tmp_path: Path, env: dict[str, str]) -> None:
    from offlinepack.submission import write_mask_tiff

    mask = write_mask_tiff(np.zeros(SMALL, np.uint8), tmp_path / "m.tif")
    with zipfile.ZipFile(tmp_path / "z.zip", "w") as archive:
        archive.write(mask, "11.tif")
    result = _invoke(["validate", str(tmp_path / "z.zip")], env)
    # each entry is fine, but with no reference the ids and shapes are unknown: "could not check" (2), not valid
    assert result.exit_code == 2, result.output
    assert "note: no competition inputs found and no ledger record of this zip" in result.output
    assert "could not check:" in result.output and "unchecked: shapes" in result.output
