"""offlinepack.score against the independent reference scorer (tests/support/reference_scorer.py), and the CLI.

Every component must agree to 1e-9 (in practice they differ by a few ulps, from summation order). TopoScore runs
offlinepack's tiling and F1 over the reference Betti module here, and over offlinepack's own Betti matching in
the whole-score tests. Full-size volumes are opt-in: `pytest -m slow tests/test_score.py`.
"""

from __future__ import annotations

import json
import math
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offlinepack import exit_codes
from offlinepack.cli.app import app
from offlinepack.score import combine, foreground_masks, score_volume, surface_dice, voi
from offlinepack.score.surface_dice import near_offsets, surfel_areas
from offlinepack.score.topo import axis_cuts, tile_slices
from offlinepack.submission.tiff import write_mask_tiff
from tests.support.betti_reference import load_reference
from tests.support.reference_scorer import (reference_score, reference_surface_dice, reference_tile_matcher,
                                            reference_voi)
from tests.support.sheet_volumes import sheet_pair

TOL = 1e-9
COMPONENTS = ("raw_score", "score", "topo_score", "surface_dice", "voi_score", "voi_split", "voi_merge")


def assert_agrees(pred: np.ndarray, label: np.ndarray, own_betti: bool = False, workers: int = 1) -> dict[str, float]:
    """score_volume vs the reference on one case; returns |difference| per component."""
    ours = score_volume(pred, label, workers=workers, matcher=None if own_betti else reference_tile_matcher)
    ref = reference_score(pred, label)
    diffs = {name: abs(getattr(ours, name) - getattr(ref, name)) for name in COMPONENTS}
    for k in range(3):
        assert (ours.betti[k].matched, ours.betti[k].pred, ours.betti[k].label) == ref.counts[k], (k, pred.shape)
    bad = {name: d for name, d in diffs.items() if not d <= TOL}
    assert not bad, (bad, pred.shape, ours, ref)
    return diffs


def _random_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shape = tuple(int(s) for s in rng.integers(1, 13, 3))
    density = rng.random()
    label = (rng.random(shape) < density).astype(np.uint8)
    if rng.random() < 0.5:
        label[rng.random(shape) < 0.15] = 2
    kind = rng.integers(0, 4)
    if kind == 0:  # independent
        pred = (rng.random(shape) < rng.random()).astype(np.uint8)
    elif kind == 1:  # label with flips
        pred = ((label == 1) ^ (rng.random(shape) < 0.1)).astype(np.uint8)
    elif kind == 2:  # values 2 and 255 count as foreground
        pred = (rng.random(shape) < density).astype(np.uint8) * rng.choice(np.array([1, 2, 255], dtype=np.uint8))
    else:  # float probabilities-like, with NaN
        pred = np.where(rng.random(shape) < density, rng.random(shape), 0.0)
        pred[rng.random(shape) < 0.05] = np.nan
    return pred, label


@pytest.fixture(scope="module", autouse=True)
def _reference_available():
    load_reference()  # skips the module's tests when the reference wheel is missing


# ---------- pieces ----------

def test_surfel_areas_equal_surface_distance_table_for_all_256_codes():
    from surface_distance import lookup_tables

    expected = lookup_tables.create_table_neighbour_code_to_surface_area((1.0, 1.0, 1.0))
    assert np.array_equal(surfel_areas(), expected)


def test_near_offsets_are_the_33_within_distance_2():
    offsets = near_offsets()
    assert len(offsets) == 33 and len({tuple(o) for o in offsets}) == 33
    assert all((o ** 2).sum() <= 4 for o in offsets) and tuple(offsets[0]) == (0, 0, 0)


def test_tiles_split_odd_lengths_longer_first_and_clamp_short_axes():
    assert axis_cuts(320, 2) == [(0, 160), (160, 320)]
    assert axis_cuts(7, 2) == [(0, 4), (4, 7)]
    assert axis_cuts(1, 2) == [(0, 1)]
    assert len(tile_slices((5, 1, 3))) == 4
    assert tile_slices((3, 2, 2))[0] == (slice(0, 2), slice(0, 1), slice(0, 1))


def test_combine_is_the_literal_official_expression():
    assert combine(1.0, 1.0, 1.0) == 1.0000000000000002
    total = sum([0.3, 0.35, 0.35])  # 0.9999999999999999, not 1: why identical volumes give 1.0000000000000002
    assert combine(0.5, 0.25, 0.125) == 0.3 / total * 0.5 + 0.35 / total * 0.25 + 0.35 / total * 0.125


def test_label_2_is_ignored_in_both_and_prediction_2_is_foreground():
    pred = np.array([[[2, 1, 0, np.nan]]])
    label = np.array([[[1, 2, 2, 0]]], dtype=np.uint8)
    pred_fg, label_fg = foreground_masks(pred, label)
    assert pred_fg.tolist() == [[[True, False, False, False]]]
    assert label_fg.tolist() == [[[True, False, False, False]]]
    with pytest.raises(ValueError, match="shapes differ"):
        foreground_masks(np.zeros((2, 2, 2)), np.zeros((2, 2, 3)))


def test_voi_without_cc3d_gives_the_same_value(monkeypatch):
    rng = np.random.default_rng(5)
    pred, label = rng.random((9, 10, 11)) < 0.3, rng.random((9, 10, 11)) < 0.3
    with_cc3d = voi(pred, label)
    monkeypatch.setitem(sys.modules, "cc3d", None)
    without = voi(pred, label)
    assert abs(with_cc3d.total - without.total) <= 1e-12 and abs(with_cc3d.score - without.score) <= 1e-12


# ---------- components vs the reference ----------

@pytest.mark.parametrize("seed", range(6))
def test_surface_dice_and_voi_match_the_reference_on_random_volumes(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(60):
        pred, label = _random_case(rng)
        pred_fg, label_fg = foreground_masks(pred, label)
        assert abs(surface_dice(pred_fg, label_fg) - reference_surface_dice(pred_fg, label_fg)) <= TOL
        split, merge, score = reference_voi(pred_fg, label_fg)
        ours = voi(pred_fg, label_fg)
        assert abs(ours.split - split) <= TOL and abs(ours.merge - merge) <= TOL and abs(ours.score - score) <= TOL


@pytest.mark.parametrize("seed", range(6))
def test_whole_score_matches_the_reference_on_random_volumes(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        assert_agrees(*_random_case(rng))


def _ball(shape, center, radius):
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    return (z - center[0]) ** 2 + (y - center[1]) ** 2 + (x - center[2]) ** 2 <= radius ** 2


def _structured_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    shape = (13, 14, 15)
    hollow = (_ball(shape, (6, 7, 7), 5) & ~_ball(shape, (6, 7, 7), 3)).astype(np.uint8)
    nested = hollow | (_ball(shape, (6, 7, 7), 1)).astype(np.uint8)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    torus = ((np.sqrt((y - 7) ** 2 + (x - 7) ** 2) - 4) ** 2 + (z - 6) ** 2 <= 2.2).astype(np.uint8)
    sheet = np.zeros(shape, np.uint8)
    sheet[6] = 1
    holed = sheet.copy()
    holed[6, 3, 3] = holed[6, 9, 10] = holed[6, 5, 12] = 0
    two_sheets = sheet.copy()
    two_sheets[9] = 1
    bridged = two_sheets.copy()
    bridged[6:10, 4, 4] = 1
    face = np.zeros(shape, np.uint8)
    face[0] = face[:, -1] = 1  # touching two faces of the volume
    labelled_2 = sheet.copy()
    labelled_2[:, :, :5] = 2
    empty = np.zeros(shape, np.uint8)
    full = np.ones(shape, np.uint8)
    return {
        "both empty": (empty, empty), "pred empty": (empty, sheet), "label empty": (sheet, empty),
        "both full": (full, full), "full vs sheet": (full, sheet), "identical sheets": (sheet, sheet),
        "sheet with 3 holes": (holed, sheet), "hollow sphere": (hollow, sheet), "nested shells": (nested, hollow),
        "torus": (torus, torus), "torus vs ball": (torus, _ball(shape, (6, 7, 7), 4).astype(np.uint8)),
        "bridge merges sheets": (bridged, two_sheets), "touching faces": (face, sheet),
        "prediction value 2": (sheet * 2, sheet), "label 2 region": (sheet, labelled_2),
        "all ignored": (full, np.full(shape, 2, np.uint8)),
        "size-1 axis": (sheet[:, :1], holed[:, :1]), "one voxel": (np.ones((1, 1, 1), np.uint8), empty[:1, :1, :1]),
        "odd tiles 7x9x11": (torus[:7, :9, :11], hollow[:7, :9, :11]),
    }


@pytest.mark.parametrize("name", list(_structured_cases()))
def test_structured_volumes_match_the_reference(name):
    pred, label = _structured_cases()[name]
    assert_agrees(pred, label)


def test_identical_volumes_score_one_after_clipping():
    pred, label = sheet_pair((24, 30, 28), seed=3)
    same = (label == 1).astype(np.uint8)
    result = score_volume(same, same, matcher=reference_tile_matcher)
    assert result.raw_score == 1.0000000000000002 and result.score == 1.0
    assert all(d.matched == d.pred == d.label for d in result.betti)


def test_sheet_volume_matches_the_reference_and_workers_change_nothing():
    pred, label = sheet_pair((33, 40, 37), seed=1)
    assert_agrees(pred, label)
    one = score_volume(pred, label, matcher=reference_tile_matcher)
    two = score_volume(pred, label, matcher=reference_tile_matcher, workers=2)
    assert one == two


# ---------- offlinepack's own Betti matching: the whole score ----------

@pytest.mark.parametrize("seed", range(6))
def test_production_score_matches_the_reference_on_random_volumes(seed):
    rng = np.random.default_rng(500 + seed)
    for _ in range(60):
        assert_agrees(*_random_case(rng), own_betti=True)


@pytest.mark.parametrize("name", list(_structured_cases()))
def test_production_score_matches_the_reference_on_structured_volumes(name):
    assert_agrees(*_structured_cases()[name], own_betti=True)


def test_production_score_matches_on_a_sheet_volume_with_workers():
    pred, label = sheet_pair((40, 48, 44), seed=7)
    assert_agrees(pred, label, own_betti=True, workers=2)


def _opt_in_slow(request):
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("full-size reference comparison: run with `pytest -m slow tests/test_score.py`")


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(256, 256, 256), (320, 320, 320), (384, 320, 300)])
def test_full_size_sheet_volumes_match_the_reference(request, shape):
    _opt_in_slow(request)
    pred, label = sheet_pair(shape, seed=sum(shape))
    assert_agrees(pred, label, own_betti=True, workers=2)


# ---------- the CLI on real TIFF files ----------

runner = CliRunner()


def _write_dataset(tmp_path: Path) -> tuple[Path, Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """A competition-like folder (train_labels/<id>.tif, LZW like Kaggle's) and the masks as a folder of TIFFs."""
    import tifffile

    volumes = {"1001": sheet_pair((20, 24, 22), seed=11), "2002": sheet_pair((17, 21, 26), seed=12),
               "3003": sheet_pair((15, 15, 15), seed=13)}
    competition = tmp_path / "competition"
    (competition / "train_labels").mkdir(parents=True)
    masks = tmp_path / "masks"
    masks.mkdir()
    for volume_id, (pred, label) in volumes.items():
        tifffile.imwrite(competition / "train_labels" / f"{volume_id}.tif", label, compression="lzw")
        write_mask_tiff(pred, masks / f"{volume_id}.tif")
    return competition, masks, volumes


def _zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, file.name)
    return zip_path


def test_cli_scores_a_zip_and_a_folder_like_the_reference(tmp_path):
    competition, masks, volumes = _write_dataset(tmp_path)
    submission = _zip_folder(masks, tmp_path / "submission.zip")
    expected = {i: reference_score(pred, label) for i, (pred, label) in volumes.items()}
    for source, workers in ((submission, "2"), (masks, "1")):
        result = runner.invoke(app, ["score", str(source), "--labels", str(competition), "--json",
                                     "--workers", workers])
        assert result.exit_code == exit_codes.OK, result.output
        report = json.loads(result.stdout)
        assert [v["id"] for v in report["volumes"]] == sorted(volumes)
        for volume in report["volumes"]:
            ref = expected[volume["id"]]
            for name in ("score", "topo_score", "surface_dice", "voi_score"):
                assert abs(volume[name] - getattr(ref, name)) <= TOL, (volume["id"], name)
        assert math.isclose(report["score"], sum(r.score for r in expected.values()) / len(expected), abs_tol=TOL)


def test_cli_table_and_ids_subset(tmp_path):
    competition, masks, _volumes = _write_dataset(tmp_path)
    result = runner.invoke(app, ["score", str(masks), "--labels", str(competition / "train_labels"),
                                 "--ids", "2002,3003", "--workers", "1"])
    assert result.exit_code == exit_codes.OK, result.output
    assert "2002" in result.stdout and "3003" in result.stdout and "1001" not in result.stdout
    assert "TopoScore" in result.stdout and "mean score:" in result.stdout


def test_cli_reports_every_missing_label_and_shape_mismatch(tmp_path):
    competition, masks, _volumes = _write_dataset(tmp_path)
    (competition / "train_labels" / "1001.tif").unlink()
    write_mask_tiff(np.zeros((5, 6, 7), np.uint8), masks / "2002.tif")
    result = runner.invoke(app, ["score", str(masks), "--labels", str(competition)])
    assert result.exit_code == exit_codes.FAILED
    assert "error: id 1001: no label 1001.tif in" in result.stderr
    assert "hint:" in result.stderr
    (competition / "train_labels" / "1001.tif").write_bytes((competition / "train_labels" / "3003.tif").read_bytes())
    result = runner.invoke(app, ["score", str(masks), "--labels", str(competition)])
    assert result.exit_code == exit_codes.FAILED
    assert "error: id 1001: mask shape (20, 24, 22) != label shape (15, 15, 15)" in result.stderr
    assert "error: id 2002: mask shape (5, 6, 7) != label shape (17, 21, 26)" in result.stderr


def test_cli_rejects_missing_inputs_and_unknown_ids(tmp_path):
    competition, masks, _volumes = _write_dataset(tmp_path)
    result = runner.invoke(app, ["score", str(tmp_path / "nope.zip"), "--labels", str(competition)])
    assert result.exit_code == exit_codes.FAILED and "do not exist" in result.stderr
    result = runner.invoke(app, ["score", str(masks), "--labels", str(tmp_path / "nolabels")])
    assert result.exit_code == exit_codes.FAILED and "labels folder" in result.stderr
    result = runner.invoke(app, ["score", str(masks), "--labels", str(competition), "--ids", "9999"])
    assert result.exit_code == exit_codes.FAILED and "id 9999: no mask 9999.tif" in result.stderr
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    result = runner.invoke(app, ["score", str(tmp_path / "bad.zip"), "--labels", str(competition)])
    assert result.exit_code == exit_codes.FAILED and "not a readable zip" in result.stderr


def test_cli_help():
    result = runner.invoke(app, ["score", "--help"])
    assert result.exit_code == 0 and "--labels" in result.stdout and "--workers" in result.stdout


def test_zip_masks_are_found_at_any_depth_and_duplicate_ids_are_refused(tmp_path):
    from offlinepack.errors import OfflinepackError
    from offlinepack.score.files import prediction_entries, read_prediction

    mask = (np.arange(2 * 3 * 4).reshape(2, 3, 4) % 3 == 0).astype(np.uint8)
    write_mask_tiff(mask, tmp_path / "1001.tif")
    with zipfile.ZipFile(tmp_path / "nested.zip", "w") as archive:
        archive.write(tmp_path / "1001.tif", "out/1001.tif")
        archive.writestr("notes.txt", "not a mask")
    entries = prediction_entries(tmp_path / "nested.zip")
    assert list(entries) == ["1001"]
    assert np.array_equal(read_prediction(entries["1001"]), mask)
    with zipfile.ZipFile(tmp_path / "twice.zip", "w") as archive:
        archive.write(tmp_path / "1001.tif", "1001.tif")
        archive.write(tmp_path / "1001.tif", "again/1001.tif")
    with pytest.raises(OfflinepackError) as error:
        prediction_entries(tmp_path / "twice.zip")
    assert "id 1001 appears 2 times" in error.value.problems[0]


def test_scoring_never_imports_torch():
    import subprocess

    code = ("import sys, numpy as np\n"
            "import offlinepack.cli.app\n"
            "from offlinepack.score import score_volume\n"
            "score_volume(np.ones((5, 4, 3), np.uint8), np.eye(4, 3, dtype=np.uint8)[None].repeat(5, 0))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind", ["images", "float", "negative"])
def test_cli_refuses_a_labels_folder_that_holds_no_label_volumes(tmp_path, kind):
    """train_images/ passed as --labels (or any volume outside 0/1/2) would score quietly against nonsense."""
    import tifffile

    competition, masks, volumes = _write_dataset(tmp_path)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    rng = np.random.default_rng(5)
    for volume_id, (_pred, label) in volumes.items():
        volume = {"images": rng.integers(0, 256, label.shape, dtype=np.uint8),
                  "float": label.astype(np.float32) * 0.5,
                  "negative": label.astype(np.int16) - 1}[kind]
        tifffile.imwrite(wrong / f"{volume_id}.tif", volume)
    result = runner.invoke(app, ["score", str(masks), "--labels", str(wrong), "--workers", "1"])
    assert result.exit_code == exit_codes.FAILED, result.output
    assert "not a label volume" in result.stderr and "hint: pass the competition's train_labels/" in result.stderr
    # the calibration reads labels through the same reader
    from offlinepack.errors import OfflinepackError
    from offlinepack.score.files import read_label

    with pytest.raises(OfflinepackError, match="not a label volume"):
        read_label(wrong / "1001.tif")
