"""Mask TIFFs read back by Pillow exactly as the scorer reads them; the atomic, validated zip."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

from offlinepack.submission import (
    SubmissionError,
    read_tiff_like_scorer,
    tiff_shape,
    write_mask_tiff,
    write_submission_zip,
)

REPO = Path(__file__).resolve().parent.parent


def _mask(shape=(7, 11, 13), seed=0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) > 0.7).astype(np.uint8)


def test_pillow_reads_back_identical_array_the_scorers_way(tmp_path: Path) -> None:
    mask = _mask((9, 17, 23))
    path = write_mask_tiff(mask, tmp_path / "a.tif")
    # the scorer's read, spelled out here rather than through our helper
    image = Image.open(path)
    stacked = np.stack([np.array(page) for page in ImageSequence.Iterator(image)], axis=0)
    assert stacked.dtype == np.uint8 and stacked.shape == (9, 17, 23)
    np.testing.assert_array_equal(stacked, mask)
    np.testing.assert_array_equal(read_tiff_like_scorer(path.read_bytes()), mask)
    assert tiff_shape(path) == (9, 17, 23)
    assert not list(tmp_path.glob(".*tmp"))


def test_single_slice_volume_stays_3d_and_all_zero_mask_round_trips(tmp_path: Path) -> None:
    one = _mask((1, 5, 6))
    np.testing.assert_array_equal(read_tiff_like_scorer(write_mask_tiff(one, tmp_path / "one.tif")), one)
    zeros = np.zeros((4, 8, 8), dtype=np.uint8)
    np.testing.assert_array_equal(read_tiff_like_scorer(write_mask_tiff(zeros, tmp_path / "z.tif")), zeros)


def test_writer_needs_no_imagecodecs(tmp_path: Path) -> None:
    """A kernel has tifffile but no imagecodecs: deflate must come from the standard library's zlib."""
    code = (
        "import sys; sys.modules['imagecodecs'] = None\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from offlinepack.submission import write_mask_tiff, read_tiff_like_scorer\n"
        "m = (np.arange(3*4*5).reshape(3,4,5) % 2).astype(np.uint8)\n"
        f"p = write_mask_tiff(m, Path({str(tmp_path / 'n.tif')!r}))\n"
        "assert (read_tiff_like_scorer(p) == m).all()\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_writer_rejects_2d_and_non_uint8(tmp_path: Path) -> None:
    from offlinepack.errors import OfflinepackError

    with pytest.raises(OfflinepackError, match="3D"):
        write_mask_tiff(np.zeros((4, 4), dtype=np.uint8), tmp_path / "x.tif")
    with pytest.raises(OfflinepackError, match="uint8"):
        write_mask_tiff(np.zeros((2, 4, 4), dtype=np.float32), tmp_path / "x.tif")


def _two_masks(tmp_path: Path) -> tuple[dict[str, Path], dict[str, tuple[int, ...]]]:
    files = {"101": write_mask_tiff(_mask((4, 6, 8), 1), tmp_path / "101.tif"),
             "202": write_mask_tiff(_mask((5, 6, 7), 2), tmp_path / "202.tif")}
    return files, {"101": (4, 6, 8), "202": (5, 6, 7)}


def test_zip_has_root_entries_and_replaces_old_zip(tmp_path: Path) -> None:
    files, shapes = _two_masks(tmp_path)
    out = tmp_path / "submission.zip"
    out.write_bytes(b"old")
    result = write_submission_zip(files, out, shapes)
    assert result.report.valid and result.entries == 2 and result.size == out.stat().st_size
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["101.tif", "202.tif"]
        np.testing.assert_array_equal(read_tiff_like_scorer(archive.read("202.tif")), _mask((5, 6, 7), 2))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failing_write_at_temp_step_keeps_old_zip(tmp_path: Path) -> None:
    files, shapes = _two_masks(tmp_path)
    out = tmp_path / "submission.zip"
    write_submission_zip(files, out, shapes)
    before = out.read_bytes()

    def disk_full(mask_files, target: Path) -> None:
        target.write_bytes(b"PK\x03\x04 partial")  # some bytes made it out before the disk filled
        raise OSError(28, "No space left on device")

    with pytest.raises(SubmissionError, match="No space left on device"):
        write_submission_zip(files, out, shapes, writer=disk_full)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_real_file_size_limit_keeps_old_zip(tmp_path: Path) -> None:
    """A real write failure (RLIMIT_FSIZE, EFBIG) in a child process, like a disk filling up."""
    big = {"big": write_mask_tiff(_mask((40, 64, 64), 5), tmp_path / "big.tif")}
    out = tmp_path / "submission.zip"
    out.write_bytes(b"previous good zip")
    code = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from offlinepack.submission import write_submission_zip, SubmissionError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        f"    write_submission_zip({{'big': Path({str(big['big'])!r})}}, Path({str(out)!r}), {{'big': (40, 64, 64)}})\n"
        "except SubmissionError as e:\n"
        "    print('failed:', e.message); sys.exit(3)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    assert "could not write" in result.stdout
    assert out.read_bytes() == b"previous good zip"
    assert not list(tmp_path.glob(".submission.zip.*"))


def test_invalid_new_zip_never_replaces_old(tmp_path: Path) -> None:
    files, shapes = _two_masks(tmp_path)
    out = tmp_path / "submission.zip"
    out.write_bytes(b"old")
    with pytest.raises(SubmissionError, match="failed validation") as info:
        write_submission_zip(files, out, {**shapes, "303": (1, 2, 3)})
    assert any("303.tif: missing" in p for p in info.value.problems)
    assert out.read_bytes() == b"old"


def test_without_tifffile_or_cc3d_pillow_and_scipy_take_over(tmp_path: Path) -> None:
    """A bare kernel: the writer falls back to Pillow, shapes come from Pillow, components from scipy."""
    code = (
        "import sys; sys.modules['tifffile'] = None; sys.modules['cc3d'] = None\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from offlinepack.submission import write_mask_tiff, read_tiff_like_scorer, tiff_shape\n"
        "from offlinepack.post import components_backend, postprocess, PostConfig\n"
        "m = (np.random.default_rng(1).random((6, 9, 11)) > 0.5).astype(np.uint8)\n"
        f"p = write_mask_tiff(m, Path({str(tmp_path / 'p.tif')!r}))\n"
        "assert (read_tiff_like_scorer(p) == m).all() and tiff_shape(p) == (6, 9, 11)\n"
        "assert components_backend() == 'scipy'\n"
        "prob = np.zeros((8, 8, 8), np.float16); prob[2:6, 2:6, 2:6] = 0.9\n"
        "assert postprocess(prob, PostConfig(min_component_voxels=10)).sum() == 64\n"
        "try:\n"
        "    components_backend('cc3d')\n"
        "except Exception as e:\n"
        "    print('ok', type(e).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok OfflinepackError"
