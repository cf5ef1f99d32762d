"""Issue 10, validate side: an empty zip is invalid; without a reference validate says what it could not check
(exit 2); entries are size-checked before they are read and streamed; messages name entries, not Python
objects; libtiff's noise stays off the terminal; a missing --input folder comes with a hint. Real zips of
real TIFFs, read back with Pillow as the scorer does."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from offlinepack.submission import validate_submission, write_mask_tiff
from offlinepack.volumes import read_volume
from tests.support.cli import invoke, write_competition
from tests.support.runs import TINY, mask_zip

REPO = Path(__file__).resolve().parent.parent


def _mask(shape=TINY) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[:, 5, :] = 1
    return mask


def test_an_empty_zip_is_invalid_with_or_without_a_reference(tmp_path: Path, env) -> None:
    empty = tmp_path / "submission.zip"
    zipfile.ZipFile(empty, "w").close()
    alone = invoke(["validate", str(empty)], env)
    assert alone.exit_code == 1 and "the zip is empty" in alone.output
    data = write_competition(tmp_path / "comp", {"11": TINY})
    against = invoke(["validate", str(empty), "--input", str(data)], env)
    assert against.exit_code == 1 and "the zip is empty" in against.output and "11.tif: missing" in against.output


def test_without_a_reference_a_wrong_shape_zip_is_could_not_check_not_valid(tmp_path: Path, env) -> None:
    wrong = mask_zip(tmp_path / "submission.zip", {"11": _mask((8, 32, 32))})  # the source is 32^3
    result = invoke(["validate", str(wrong), "--json"], env)
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["complete"] is False and report["exit_code"] == 2
    assert any(u.startswith("shapes:") for u in report["unchecked"]) and any(u.startswith("ids:") for u in report["unchecked"])
    text = invoke(["validate", str(wrong)], env)
    assert text.exit_code == 2 and "could not check:" in text.output and "hint: pass --input" in text.output
    data = write_competition(tmp_path / "comp", {"11": TINY})
    assert invoke(["validate", str(wrong), "--input", str(data)], env).exit_code == 1  # with a reference: invalid


def test_a_small_zip_declaring_a_1_gib_entry_is_refused_unread_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "submission.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("11.tif", "w", force_zip64=True) as entry:
            block = bytes(64 << 20)
            for _ in range(16):  # 1 GiB of zeros, about 1 MB compressed
                entry.write(block)
    assert bomb.stat().st_size < 8 << 20
    script = ("import sys\nfrom offlinepack.cli.app import main\nsys.argv = ['offlinepack', 'validate', "
              f"{str(bomb)!r}]\ntry:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
              "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
              "print('PEAK', hwm.split()[1])\nsys.exit(code)\n")  # VmHWM: this process's own peak (kB)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={"OFFLINEPACK_KAGGLE_ROOT": str(tmp_path / "no-kaggle"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "11.tif: declares 1073741824 bytes uncompressed, more than the largest plausible mask" in done.stdout
    peak_kib = int(done.stdout.rsplit("PEAK", 1)[1].split()[0])
    assert peak_kib < 300 * 1024, f"validate peaked at {peak_kib // 1024} MiB"  # main read it all: 2.1 GB


def test_entry_limits_follow_the_reference_shape_and_the_ratio_of_deflate(tmp_path: Path) -> None:
    from offlinepack.submission.validate import MAX_MASK_VOXELS, mask_byte_limit

    assert mask_byte_limit(None) > MAX_MASK_VOXELS and mask_byte_limit(TINY) < 1 << 20
    # a plausible-looking entry bigger than a 32^3 mask can be: refused unread when the reference is known
    padded = tmp_path / "padded.zip"
    with zipfile.ZipFile(padded, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("11.tif", bytes(4 << 20))
    report = validate_submission(padded, {"11": TINY})
    assert any("more than the largest plausible mask" in p for p in report.problems), report.problems
    # a declared ratio deflate cannot reach (here: a forged central directory) is refused before decompressing
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("11.tif", bytes(4096))
    raw = bytearray(forged.read_bytes())
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24:central + 28] = (100 << 20).to_bytes(4, "little")  # uncompressed size: 100 MiB
    forged.write_bytes(bytes(raw))
    report = validate_submission(forged, None)
    assert any("compression ratio" in p and "beyond what deflate can reach" in p for p in report.problems), report.problems


def test_an_unreadable_entry_is_named_not_a_python_object(tmp_path: Path, env) -> None:
    bad = tmp_path / "submission.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("11.tif", b"this is not a TIFF at all")
    result = invoke(["validate", str(bad)], env)
    assert result.exit_code == 1
    assert "object at 0x" not in result.output and "BytesIO" not in result.output
    assert "11.tif: Pillow cannot read it as a TIFF (UnidentifiedImageError: cannot identify image file 11.tif)" in result.output


def _truncated_mask(tmp_path: Path) -> bytes:
    rng = np.random.default_rng(0)
    tif = write_mask_tiff((rng.random((8, 64, 64)) > 0.5).astype(np.uint8), tmp_path / "m.tif")
    data = tif.read_bytes()
    return data[: len(data) // 2]


def test_libtiff_noise_stays_off_stderr_and_its_words_go_into_the_reason(tmp_path: Path, capfd) -> None:
    bad = tmp_path / "submission.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("11.tif", _truncated_mask(tmp_path))
    report = validate_submission(bad, {"11": (8, 64, 64)})
    volume = tmp_path / "v.tif"
    volume.write_bytes(_truncated_mask(tmp_path))
    with pytest.raises(Exception) as failed:
        read_volume(volume, prefer="pillow")
    captured = capfd.readouterr()
    assert "TIFF" not in captured.err and "Decode" not in captured.err, captured.err
    assert any("11.tif: Pillow cannot read it" in p and "libtiff: " in p for p in report.problems), report.problems
    assert "libtiff: " in " ".join(failed.value.lines())


def test_validate_input_missing_folder_has_a_hint(tmp_path: Path, env) -> None:
    good = mask_zip(tmp_path / "submission.zip", {"11": _mask()})
    result = invoke(["validate", str(good), "--input", str(tmp_path / "missing")], env)
    assert result.exit_code == 2
    assert f"error: input folder {tmp_path / 'missing'} does not exist" in result.output
    assert "hint: pass --input with the competition folder" in result.output


def test_a_valid_zip_with_its_reference_is_still_valid(tmp_path: Path, env) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY, "22": TINY})
    good = mask_zip(tmp_path / "submission.zip", {"11": _mask(), "22": _mask()})
    result = invoke(["validate", str(good), "--input", str(data), "--json"], env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["complete"] and [e["shape"] for e in report["entries"]] == [list(TINY)] * 2
    assert report["entries"][0]["values"] == [0, 1] and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
