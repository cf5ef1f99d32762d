"""`calibrate` on labelled sets with planted distortions, scored with the real leaderboard scorer.

Planted (tests/support/planted.py): maps scaled by 0.5 put the best global threshold far below 0.5;
27-voxel speckle at full probability is removed only by a component size >= 28; a family of volumes
scaled by 0.5 beside one scaled by 0.9 needs different thresholds, which a per-volume rule follows.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offlinepack.calibrate import LocalPool, calibrate, pair_with_labels
from offlinepack.calibrate import stats
from offlinepack.calibrate.tasks import score_settings
from offlinepack.cli.app import app
from offlinepack.errors import OfflinepackError
from offlinepack.post import probability_histogram, volume_threshold
from offlinepack.probabilities import load_map, open_probabilities
from tests.support.planted import write_planted_set

THRESHOLDS = [round(0.10 + 0.05 * i, 2) for i in range(9)]  # 0.10 ... 0.50
SHAPE = (32, 32, 32)
SIZES = [0, 40]  # speckle is 27 voxels


def _focused() -> list[dict]:
    fixed = [{"threshold": t, "min_component_voxels": m} for t in THRESHOLDS for m in SIZES]
    rule = [{"threshold_rule": "relative_quantile", "rule_factor": f, "min_component_voxels": 40}
            for f in (0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)]
    return fixed + rule


def _brute_force(labelled, settings) -> np.ndarray:
    """Every setting on every volume, no early stopping: the truth the search must find."""
    return np.array([[score_settings(item, [s])[0] for item in labelled.items] for s in settings])


@pytest.fixture(scope="module")
def scaled_set(tmp_path_factory):
    probs, labels = write_planted_set(tmp_path_factory.mktemp("scaled"), [0.5] * 6, shape=SHAPE)
    return pair_with_labels([(open_probabilities(probs), 1.0)], labels)


@pytest.mark.parametrize("strategy", ["auto", "halving"])
def test_calibration_recovers_the_planted_threshold_and_size_and_beats_the_defaults(scaled_set, strategy) -> None:
    fixed = [s for s in _focused() if "threshold_rule" not in s]
    result = calibrate(scaled_set, search="grid", candidates=fixed, folds=3, pool=LocalPool(1), strategy=strategy)
    truth = _brute_force(scaled_set, fixed)
    best = fixed[int(np.argmax(truth.mean(axis=1)))]
    assert abs(result.post.threshold - best["threshold"]) <= 0.05 + 1e-9  # within the search's resolution
    assert result.post.threshold <= 0.3, "the planted optimum is far below 0.5"
    assert result.post.min_component_voxels == 40, "only a size filter removes the 27-voxel speckle"
    assert result.cv.mean > result.defaults.mean and result.gain_is_significant
    assert result.in_sample.mean >= result.cv.mean - 1e-12
    assert result.in_sample.low <= result.in_sample.mean <= result.in_sample.high


@pytest.mark.parametrize("strategy", ["auto", "halving"])
def test_a_per_volume_rule_is_chosen_only_when_it_wins_in_cross_validation(tmp_path: Path, strategy) -> None:
    probs, labels = write_planted_set(tmp_path, [0.5, 0.9] * 3, shape=SHAPE)
    labelled = pair_with_labels([(open_probabilities(probs), 1.0)], labels)
    result = calibrate(labelled, search="grid", candidates=_focused() + [
        {"threshold": t, "min_component_voxels": 40} for t in (0.55, 0.6, 0.65)], folds=3, pool=LocalPool(1),
        strategy=strategy)
    assert result.rule_chosen and result.post.threshold_rule == "relative_quantile"
    assert result.rule_cv.mean > result.fixed_cv.mean
    # the rule gives the two families different thresholds, each near its own scale
    thresholds = {}
    for item in labelled.items:
        prob = load_map(Path(item.maps[0][0]))
        thresholds[item.id] = volume_threshold(result.post, probability_histogram(prob))[0]
    assert thresholds["001"] > thresholds["000"] + 0.1


def test_a_global_threshold_is_kept_when_rules_do_not_win(scaled_set) -> None:
    # every volume scaled alike: a rule cannot beat the best global threshold by construction... or ties it;
    # whichever is chosen, the report names both figures and the choice follows them
    result = calibrate(scaled_set, search="grid", candidates=_focused(), folds=3, pool=LocalPool(1))
    assert result.rule_chosen == (result.rule_cv.mean > result.fixed_cv.mean)


def test_early_stopping_finds_the_same_best_as_scoring_everything(scaled_set) -> None:
    racing = calibrate(scaled_set, search="grid", candidates=_focused(), folds=3, pool=LocalPool(1))
    full = calibrate(scaled_set, search="grid", candidates=_focused(), folds=3, pool=LocalPool(1), early_stop=False)
    assert racing.best == full.best and racing.evaluations < full.evaluations


def test_random_and_bayes_searches_run_and_stay_in_budget(scaled_set) -> None:
    for search, strategy in (("random", "auto"), ("random", "halving"), ("bayes", "auto")):
        result = calibrate(scaled_set, search=search, budget=12, folds=2, pool=LocalPool(1), seed=1,
                           strategy=strategy)
        assert result.settings_scored <= 13  # budget + the defaults
        assert result.cv.mean > result.defaults.mean


@pytest.mark.parametrize("strategy", ["exhaustive", "halving"])
def test_local_pool_gives_the_same_result_as_inline(scaled_set, strategy) -> None:
    inline = calibrate(scaled_set, search="grid", candidates=_focused()[:10], folds=3, pool=LocalPool(1),
                       strategy=strategy)
    pooled = calibrate(scaled_set, search="grid", candidates=_focused()[:10], folds=3, pool=LocalPool(2),
                       strategy=strategy)

    def comparable(result) -> dict:
        return result.to_dict() | {"seconds": 0, "pool": 0, "rungs": [r | {"seconds": 0} for r in result.to_dict()["rungs"]]}

    assert comparable(inline) == comparable(pooled)


def test_cross_validation_scores_each_volume_with_a_pick_made_without_it() -> None:
    # setting 0 wins on volumes 0-3, setting 1 only on volumes 4 and 5: every fold picks 0, and the
    # held-out score of volumes 4/5 is setting 0's (picked on the others), not setting 1's 0.6
    matrix = np.array([[0.9, 0.9, 0.9, 0.9, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1, 0.6, 0.6]])
    assignment = np.array([0, 1, 2, 0, 1, 2])
    held, picks = stats.cross_validate(matrix, np.array([0, 1]), assignment)
    assert picks == [0, 0, 0] and held.tolist() == matrix[0].tolist()
    interval = stats.bootstrap(held)
    assert interval.low < interval.mean < interval.high


def test_pairing_names_every_volume_without_a_label(tmp_path: Path) -> None:
    probs, labels = write_planted_set(tmp_path, [0.5, 0.5, 0.5], shape=(16, 16, 16))
    (labels / "001.tif").unlink()
    (labels / "002.tif").unlink()
    with pytest.raises(OfflinepackError) as info:
        pair_with_labels([(open_probabilities(probs), 1.0)], labels)
    text = "\n".join(info.value.lines())
    assert "volume 001: no label" in text and "volume 002: no label" in text
    np.save(probs / "000.npy", np.zeros((16, 16, 8), dtype=np.uint8))
    with pytest.raises(OfflinepackError) as info:
        pair_with_labels([(open_probabilities(probs), 1.0)], labels, ids=["000"])
    assert ("volume 000: probability map shape (16, 16, 8) differs from its label's (16, 16, 16)"
            in info.value.lines()[1])


def test_cli_writes_a_config_that_run_accepts_and_the_ledger_links_them(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    env = {"OFFLINEPACK_KAGGLE_ROOT": str(tmp_path / "no-kaggle")}
    probs, labels = write_planted_set(tmp_path / "set", [0.5] * 4, shape=(32, 32, 32))
    result = CliRunner().invoke(app, ["calibrate", "-p", str(probs), "-l", str(labels), "-o", "calibrated.toml",
                                      "--search", "random", "--budget", "8", "--folds", "2", "--workers", "1",
                                      "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"cv", "in_sample", "defaults", "gain", "verdict"} <= set(report)
    text = (tmp_path / "calibrated.toml").read_text()
    assert "[post]" in text and "cross-validated score" in text
    from offlinepack.run import load_run_toml

    assert load_run_toml(tmp_path / "calibrated.toml").post.to_dict() == report["post"]
    # the labels double as the volumes here: a run from the maps with the calibrated config
    images = tmp_path / "images"
    images.mkdir()
    for item in sorted(labels.glob("*.tif")):
        (images / item.name).write_bytes(item.read_bytes())
    run = CliRunner().invoke(app, ["run", "--from-probabilities", str(probs), "-i", str(images),
                                   "--config", "calibrated.toml", "-o", "submission.zip"], env=env,
                             catch_exceptions=False)
    assert run.exit_code == 0, run.output
    listing = CliRunner().invoke(app, ["runs", "--ledger", "offlinepack-runs.jsonl", "--json"], env=env,
                                 catch_exceptions=False)
    assert listing.exit_code == 0, listing.output
    records = json.loads(listing.output)["runs"]
    assert [r["type"] for r in records] == ["calibration", "run"]
    assert records[0]["run_id"] == report["calibration_id"] and records[0]["summary"].startswith("cv ")
    assert records[1]["calibration"] == report["calibration_id"]
    bad = CliRunner().invoke(app, ["calibrate", "-p", str(probs), "-l", str(tmp_path / "nope")], env=env)
    assert bad.exit_code != 0 and "does not exist" in bad.output
