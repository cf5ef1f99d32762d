"""Saved probability maps: both encodings, the record beside them, and `run --from-probabilities`
giving byte-identical masks to the run that saved them (bundled demo U-Net on CPU, real TIFFs and zips)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.demo.sample import write_lzw_tiff
from offlinepack.demo.synthetic import make_sheet_volume
from offlinepack.errors import OfflinepackError
from offlinepack.probabilities import decode, encode, load_map, open_probabilities


def _invoke(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in sorted(archive.namelist())}


def test_encodings_round_trip_within_their_resolution(tmp_path: Path) -> None:
    p = np.random.default_rng(0).random((4, 5, 6)).astype(np.float32)
    u8 = encode(p, "uint8")
    assert u8.dtype == np.uint8 and np.abs(decode(u8) - p).max() <= 0.5 / 255 + 1e-7
    f16 = encode(p, "float16")
    assert f16.dtype == np.float16 and np.abs(decode(f16) - p).max() < 1e-3
    np.save(tmp_path / "bad.npy", np.full((2, 2, 2), 1.5, dtype=np.float32))
    with pytest.raises(OfflinepackError, match="outside"):
        load_map(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(OfflinepackError, match="must be 3D"):
        load_map(tmp_path / "flat.npy")


@pytest.mark.parametrize("dtype", ["uint8", "float16"])
def test_from_probabilities_gives_the_same_masks_as_the_run_that_saved_them(
    tmp_path: Path, env: dict[str, str], dtype: str
) -> None:
    images = tmp_path / "in" / "test_images"
    images.mkdir(parents=True)
    for seed, ident in enumerate(("a1", "b2")):
        write_lzw_tiff(make_sheet_volume((48, 56, 64), seed=30 + seed).image, images / f"{ident}.tif")
    (tmp_path / "in" / "test.csv").write_text("id,scroll_id\na1,1\nb2,1\n")
    saved = tmp_path / "probs"
    first = _invoke(["run", "-m", "demo", "-i", str(tmp_path / "in"), "-o", "first.zip",
                     "--save-probabilities", str(saved), "--probabilities-dtype", dtype, "--threshold", "0.35"], env)
    assert first.exit_code == 0, first.output
    meta = json.loads((saved / "probabilities.json").read_text())
    assert meta["dtype"] == dtype and set(meta["volumes"]) == {"a1", "b2"}
    assert meta["models"] and all(len(m["sha256"]) == 64 for m in meta["models"])
    assert np.load(saved / "a1.npy").dtype == np.dtype(dtype)
    # no --model, no --input: the input is the one recorded beside the maps
    second = _invoke(["run", "--from-probabilities", str(saved), "-o", "second.zip", "--threshold", "0.35"], env)
    assert second.exit_code == 0, second.output
    assert _members(tmp_path / "first.zip") == _members(tmp_path / "second.zip")
    records = [json.loads(line) for line in (tmp_path / "offlinepack-runs.jsonl").read_text().splitlines()]
    assert records[0]["probabilities"]["saved_to"] == str(saved)
    assert records[1]["probabilities"]["from"] == str(saved)
    assert [m["sha256"] for m in records[1]["models"]] == [m["sha256"] for m in records[0]["models"]]
    # other post-processing from the same maps: a different submission, no GPU or model needed
    third = _invoke(["run", "--from-probabilities", str(saved), "-o", "third.zip", "--threshold", "0.9"], env)
    assert third.exit_code == 0, third.output
    assert _members(tmp_path / "third.zip") != _members(tmp_path / "first.zip")


def test_from_probabilities_errors_name_the_folder(tmp_path: Path, env: dict[str, str]) -> None:
    result = _invoke(["run", "--from-probabilities", str(tmp_path / "nothing")], env)
    assert result.exit_code != 0 and "does not exist" in result.output
    (tmp_path / "loose").mkdir()
    np.save(tmp_path / "loose" / "x.npy", np.zeros((4, 4, 4), dtype=np.uint8))
    result = _invoke(["run", "--from-probabilities", str(tmp_path / "loose")], env)
    assert result.exit_code != 0 and "does not record which input" in result.output
    assert open_probabilities(tmp_path / "loose").ids == ("x",)
