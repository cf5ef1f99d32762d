"""The validator against each way a submission goes wrong; all problems listed at once."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from offlinepack.submission import validate_submission, write_mask_tiff

SHAPE = (4, 6, 8)


def _tiff_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, photometric="minisblack")
    return buffer.getvalue()


def _good(seed: int = 0) -> bytes:
    return _tiff_bytes((np.random.default_rng(seed).random(SHAPE) > 0.5).astype(np.uint8))


def _zip(tmp_path: Path, entries: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            if name.endswith("/"):
                archive.mkdir(name.rstrip("/")) if hasattr(archive, "mkdir") else archive.writestr(name, b"")
            else:
                archive.writestr(name, data)
    return path


def test_valid_zip(tmp_path: Path) -> None:
    report = validate_submission(_zip(tmp_path, [("a.tif", _good(1)), ("b.tif", _good(2))]), {"a": SHAPE, "b": SHAPE})
    assert report.valid and report.problems == () and report.warnings == ()
    assert sorted(e.id for e in report.entries) == ["a", "b"]
    assert all(e.shape == SHAPE and e.dtype == "uint8" for e in report.entries)


def test_2d_tiff_reads_as_1hw_and_fails_the_shape_check(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((6, 8), dtype=np.uint8)).save(buffer, format="TIFF")
    report = validate_submission(_zip(tmp_path, [("a.tif", buffer.getvalue())]), {"a": SHAPE})
    assert not report.valid
    assert report.problems == ("a.tif: shape (1, 6, 8) differs from the source volume's (4, 6, 8) (a single-page 2D TIFF reads as (1,H,W))",)


@pytest.mark.parametrize(
    ("entries", "expected_problem"),
    [
        ([("a.tif", _tiff_bytes(np.zeros((4, 6, 9), np.uint8)))], "a.tif: shape (4, 6, 9) differs from the source volume's (4, 6, 8)"),
        ([], "a.tif: missing (expected one mask per test volume)"),
        ([("a.tif", _good()), ("a.tif", _good())], "a.tif: entry appears 2 times in the zip"),
        ([("a.tif", _good()), ("sub/b.tif", _good())], "sub/b.tif: nested entry; masks must sit at the zip's root as <id>.tif"),
        ([("a.tif", _good()), ("notes.txt", b"hi")], "notes.txt: not a .tif entry (the scorer only reads *.tif)"),
        ([("a.tif", _good()), ("c.tif", _good())], "c.tif: unexpected id 'c' (not among the 1 test volume(s))"),
        ([("a.tif", _tiff_bytes(np.zeros(SHAPE, np.uint16)))], "a.tif: dtype uint16, expected uint8"),
        ([("a.tif", _tiff_bytes(np.full(SHAPE, 3, np.uint8)))], "a.tif: values (3,), expected only 0 and 1"),
        ([("a.tif", b"II*\x00 this is not really a tiff")], "a.tif: Pillow cannot read it as a TIFF"),
        ([("a.tif", _good()), ("sub/", b"")], "sub/: folder entry; masks must sit at the zip's root"),
    ],
    ids=["wrong-shape", "missing", "duplicate", "nested", "non-tiff", "extra-id", "uint16", "values", "unreadable", "folder"],
)
def test_each_bad_case_is_named(tmp_path: Path, entries, expected_problem: str) -> None:
    report = validate_submission(_zip(tmp_path, entries), {"a": SHAPE})
    assert not report.valid
    assert any(p.startswith(expected_problem) for p in report.problems), report.problems


def test_zero_255_is_a_warning_not_a_problem(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, np.uint8)
    mask[1] = 255
    report = validate_submission(_zip(tmp_path, [("a.tif", _tiff_bytes(mask))]), {"a": SHAPE})
    assert report.valid
    assert report.warnings == ("a.tif: values {0,255}; the scorer treats any non-zero as surface, {0,1} preferred",)


def test_all_problems_listed_at_once(tmp_path: Path) -> None:
    entries = [("a.tif", _tiff_bytes(np.zeros((4, 6, 9), np.uint16))), ("x/y.tif", _good()), ("readme.md", b"")]
    report = validate_submission(_zip(tmp_path, entries), {"a": SHAPE, "b": SHAPE})
    assert len(report.problems) == 5, report.problems


def test_not_a_zip_and_missing_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    assert "not a readable zip file" in validate_submission(bad, {"a": SHAPE}).problems[0]
    assert "no such file" in validate_submission(tmp_path / "none.zip", {"a": SHAPE}).problems[0]


def test_expected_from_input_set_reads_source_shapes_from_headers(tmp_path: Path) -> None:
    """An InputSet-like value (contract 4: .volumes of (id, path), .missing_ids) is accepted."""
    from types import SimpleNamespace

    from offlinepack.demo.sample import write_lzw_tiff

    source = write_lzw_tiff(np.zeros(SHAPE, np.uint8), tmp_path / "a.tif")
    inputs = SimpleNamespace(volumes=(SimpleNamespace(id="a", path=source),), missing_ids=("z",))
    mask = write_mask_tiff(np.zeros(SHAPE, np.uint8), tmp_path / "mask.tif")
    report = validate_submission(_zip(tmp_path, [("a.tif", mask.read_bytes())]), inputs)
    assert report.problems == ("z: listed in test.csv but no source volume exists, so it cannot be checked", "z.tif: missing (expected one mask per test volume)")
