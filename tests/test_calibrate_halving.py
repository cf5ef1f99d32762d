"""The halving search (calibrate/halving.py) on planted labelled sets, with the real scorers.

Volumes are 32^3 (a 16^3 centre crop with `min_crop_side` lowered), so every rung runs in seconds: crop
screen -> whole-volume cheap rung -> the finalists exactly on every volume.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from offlinepack.calibrate import LocalPool, calibrate, pair_with_labels, stats
from offlinepack.calibrate import search as search_module
from offlinepack.calibrate.halving import HalvingPlan, deal_volumes
from offlinepack.calibrate.tasks import post_masks
from offlinepack.cli.app import app
from offlinepack.demo.sample import write_lzw_tiff
from offlinepack.demo.synthetic import make_sheet_volume
from offlinepack.post import PostConfig, postprocess, postprocess_checked, probability_histogram
from offlinepack.probabilities import load_map, open_probabilities
from tests.support.planted import planted_map, write_planted_set

PLAN = HalvingPlan(eta=3, finalists=2, screen_volumes=8, check_volumes=4, min_crop_side=8)
THRESHOLDS = [round(0.10 + 0.05 * i, 2) for i in range(13)]  # 0.10 ... 0.70
CANDIDATES = ([{"threshold": t, "min_component_voxels": m} for t in THRESHOLDS for m in (0, 40)]
              + [{"threshold_rule": "relative_quantile", "rule_factor": f, "min_component_voxels": m}
                 for f in (0.2, 0.3, 0.4, 0.5, 0.6) for m in (0, 40)])


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """8 volumes, two families (scaled 0.5 and 0.9): a per-volume rule pays."""
    folder = tmp_path_factory.mktemp("halving")
    probs, labels = write_planted_set(folder, [0.5, 0.9] * 4, shape=(32, 32, 32))
    return folder, pair_with_labels([(open_probabilities(probs), 1.0)], labels)


def _halving(labelled, **kw):
    return calibrate(labelled, search="grid", candidates=CANDIDATES, folds=4, pool=LocalPool(1),
                     strategy="halving", halving=PLAN, **kw)


def test_shared_prefix_masks_equal_the_pipeline_masks() -> None:
    label = make_sheet_volume((32, 32, 32), seed=1, noise=0.0).label
    prob = planted_map(label, 0.6, 6, seed=1)
    histogram = probability_histogram(prob)
    posts = [PostConfig(threshold=t, min_component_voxels=m, fill_holes=f, plug_holes=p)
             for t in (0.2, 0.3) for m in (0, 1, 40) for f in ("3d", "none", "2d") for p in (False, True)]
    posts += [PostConfig(threshold=0.3, hysteresis_low=0.15, min_component_voxels=40),
              PostConfig(threshold=0.3, hysteresis_low=0.15, min_component_voxels=0),
              PostConfig(threshold=0.3, min_component_voxels=40, max_hole_voxels=10),
              PostConfig(threshold=0.3, closing_radius=1), PostConfig(threshold=0.3, min_component_mean_probability=0.4),
              PostConfig(threshold_rule="relative_quantile", rule_factor=0.5, min_component_voxels=40),
              PostConfig(threshold_rule="relative_quantile", rule_factor=0.5, min_component_voxels=0),
              PostConfig(threshold=0.95)]
    seen = set()
    for index, mask in post_masks(prob, posts, histogram):
        seen.add(index)
        assert np.array_equal(mask, postprocess_checked(prob, posts[index], histogram)), posts[index]
    assert seen == set(range(len(posts)))


def test_rungs_shrink_and_the_finalists_are_scored_exactly_on_every_volume(mixed) -> None:
    _, labelled = mixed
    result = _halving(labelled)
    names = [r.name for r in result.rungs]
    assert names == ["crop", "cheap", "exact"] and result.strategy == "halving"
    crop, cheap, exact = result.rungs
    assert crop.settings == len(CANDIDATES) + 1  # + the defaults
    assert crop.settings > cheap.settings > exact.settings - 1  # exact adds the defaults back
    assert crop.kept == cheap.settings and cheap.kept <= exact.settings <= cheap.kept + 1
    assert crop.volumes == 8 and cheap.volumes == 4 and exact.volumes == 8
    assert crop.evaluations == crop.settings * crop.volumes and cheap.evaluations == cheap.settings * cheap.volumes
    assert exact.evaluations == exact.settings * 8 == result.evaluations
    assert result.cheap_evaluations == crop.evaluations + cheap.evaluations
    assert result.dropped_early == crop.settings - exact.settings
    report = result.to_dict()
    assert [r["rung"] for r in report["rungs"]] == names and report["cheap_evaluations"] == result.cheap_evaluations
    assert len(report["fold_picks"]) == 4


def test_the_planted_best_survives_the_screen_and_the_rule_still_has_to_win(mixed) -> None:
    _, labelled = mixed
    halving = _halving(labelled)
    exhaustive = calibrate(labelled, search="grid", candidates=CANDIDATES, folds=4, pool=LocalPool(1),
                           strategy="exhaustive", early_stop=False)
    # what scoring everything exactly picks, the screen keeps and picks too (within the search's resolution)
    assert halving.rule_chosen == exhaustive.rule_chosen
    assert halving.best["threshold_rule"] == exhaustive.best["threshold_rule"] == "relative_quantile"
    assert abs(halving.best["rule_factor"] - exhaustive.best["rule_factor"]) <= 0.1 + 1e-9
    assert halving.best["min_component_voxels"] == 40, "only a size filter removes the 27-voxel speckle"
    assert halving.in_sample.mean >= exhaustive.in_sample.mean - 0.01
    assert halving.rule_cv.mean > halving.fixed_cv.mean  # the rule beat the best global threshold in CV
    assert halving.cv.mean > halving.defaults.mean and halving.gain_is_significant
    assert halving.evaluations < exhaustive.evaluations / 3


def test_held_out_labels_do_not_steer_their_folds_choice(tmp_path: Path) -> None:
    # 8 alike volumes, 2 folds; fold 0's labels are then replaced by the mask of a poor setting (threshold
    # 0.45, no size filter), which scores 1.0 there: a screen that saw fold 0's volumes would carry that
    # setting into fold 0's finalists (finalists=1) and fold 0 would pick it. An honest screen does not move.
    fixed = [s for s in CANDIDATES if "threshold_rule" not in s]
    plan = HalvingPlan(eta=3, finalists=1, screen_volumes=8, check_volumes=4, min_crop_side=8)
    probs, labels = write_planted_set(tmp_path / "honest", [0.5] * 8, shape=(32, 32, 32))

    def run(probs_dir: Path, labels_dir: Path):
        labelled = pair_with_labels([(open_probabilities(probs_dir), 1.0)], labels_dir)
        return labelled, calibrate(labelled, search="grid", candidates=fixed, folds=2, pool=LocalPool(1),
                                   strategy="halving", halving=plan)

    labelled, before = run(probs, labels)
    held = [i for i, fold in enumerate(stats.folds(8, 2, 0)) if fold == 0]
    shutil.copytree(probs, tmp_path / "probs")  # new paths: nothing reused from the worker's cache
    shutil.copytree(labels, tmp_path / "labels")
    poor = PostConfig(threshold=0.45, min_component_voxels=0)
    for index in held:
        item = labelled.items[index]
        write_lzw_tiff(postprocess(load_map(Path(item.maps[0][0])), poor), tmp_path / "labels" / f"{item.id}.tif")
    _, after = run(tmp_path / "probs", tmp_path / "labels")
    assert before.fold_picks[0]["threshold"] != 0.45
    assert after.fold_picks[0] == before.fold_picks[0], "fold 0's choice moved with its held-out labels"
    assert after.best["threshold"] == 0.45, "the scramble must matter where the volumes are seen (in-sample)"


def test_rung_volumes_are_dealt_over_the_folds() -> None:
    assignment = stats.folds(10, 5, 0)
    order = list(np.random.default_rng(0).permutation(10))
    picked = deal_volumes(assignment, order, 5)
    assert sorted(assignment[picked].tolist()) == [0, 1, 2, 3, 4]
    assert len(set(deal_volumes(assignment, order, 10))) == 10
    assert deal_volumes(assignment, order, 3) == picked[:3]


def test_auto_takes_halving_for_large_searches(mixed, monkeypatch) -> None:
    _, labelled = mixed
    small = calibrate(labelled, search="grid", candidates=CANDIDATES[:6], folds=2, pool=LocalPool(1))
    assert small.strategy == "exhaustive" and not small.rungs
    monkeypatch.setattr(search_module, "AUTO_HALVING_EVALUATIONS_320", 0)
    large = calibrate(labelled, search="grid", candidates=CANDIDATES[:6], folds=2, pool=LocalPool(1))
    assert large.strategy == "halving" and large.rungs[-1].name == "exact"
    with pytest.raises(Exception, match="bayes"):
        calibrate(labelled, search="bayes", budget=4, folds=2, pool=LocalPool(1), strategy="halving")


def test_cli_reports_the_rungs(mixed, tmp_path: Path, monkeypatch) -> None:
    folder, _ = mixed
    monkeypatch.chdir(tmp_path)
    env = {"OFFLINEPACK_KAGGLE_ROOT": str(tmp_path / "no-kaggle")}
    result = CliRunner().invoke(app, ["calibrate", "-p", str(folder / "probs"), "-l", str(folder / "labels"),
                                      "-o", "calibrated.toml", "--budget", "30", "--folds", "2", "--workers", "1",
                                      "--strategy", "halving", "--finalists", "1", "--json"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["strategy"] == "halving" and report["rungs"][-1]["rung"] == "exact"
    assert report["evaluations"] == report["rungs"][-1]["evaluations"]
    assert report["cheap_evaluations"] == sum(r["evaluations"] for r in report["rungs"][:-1]) > 0
    text = CliRunner().invoke(app, ["calibrate", "-p", str(folder / "probs"), "-l", str(folder / "labels"),
                                    "-o", "c2.toml", "--budget", "30", "--folds", "2", "--workers", "1",
                                    "--strategy", "halving"], env=env, catch_exceptions=False)
    assert text.exit_code == 0 and "halving: cheap" in text.output and "exact" in text.output
    bad = CliRunner().invoke(app, ["calibrate", "-p", str(folder / "probs"), "-l", str(folder / "labels"),
                                   "--strategy", "fastest"], env=env)
    assert bad.exit_code != 0 and "--strategy" in bad.output


def test_disagreeing_folds_cannot_blow_up_the_exact_rung() -> None:
    from offlinepack.calibrate.halving import _finalists

    # 6 tracks that each rank different settings first: their best of each group always goes, the
    # second-best only while the union stays within the cap
    ranked = {track: [[10 * track + 1, 10 * track + 2], [10 * track + 5, 10 * track + 6]] for track in range(6)}
    capped = _finalists(ranked, per_group=2, cap=8)
    assert all(capped[t] == [10 * t + 1, 10 * t + 5] for t in range(6))
    agreeing = {track: [[1, 2, 3], [5, 6, 7]] for track in range(6)}
    assert all(rows == [1, 2, 5, 6] for rows in _finalists(agreeing, per_group=2, cap=8).values())


def test_settings_with_the_same_scores_take_one_finalist_place() -> None:
    from offlinepack.calibrate.halving import _ranked
    from offlinepack.calibrate.tasks import ScoreMatrix

    matrix = ScoreMatrix([None] * 3, pool=None, scorer=None, workers=1)
    rows = matrix.add([{"threshold": 0.45, "min_component_voxels": m} for m in (0, 64)]
                      + [{"threshold": 0.4, "min_component_voxels": 0}, {"threshold": 0.5, "min_component_voxels": 0}])
    for row, scores in zip(rows, ([0.9, 0.9, 0.8], [0.9, 0.9, 0.8], [0.9, 0.85, 0.8], [0.7, 0.7, 0.7])):
        matrix.rows[row][:] = scores
    fixed, rule = _ranked(matrix, rows, [0, 1, 2], distinct=True)
    assert fixed == [rows[0], rows[2], rows[3]] and rule == []  # the size-64 twin of the leader is left out
    assert _ranked(matrix, rows, [0, 1, 2])[0] == [rows[0], rows[1], rows[2], rows[3]]
