"""The winners' topology steps and per-volume threshold rules, on hand-made masks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from offlinepack.errors import OfflinepackError
from offlinepack.post import (
    PostConfig,
    postprocess,
    probability_histogram,
    rule_threshold,
)
from offlinepack.post.topology import plug_one_voxel_holes


def _sheet(shape=(20, 30, 30), z=10) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[z, 2:-2, 2:-2] = True
    return mask


def test_plug_fills_a_one_voxel_hole_through_a_sheet_and_nothing_else() -> None:
    mask = _sheet()
    mask[10, 15, 15] = False
    plugged = plug_one_voxel_holes(mask)
    assert plugged[10, 15, 15] and plugged.sum() == _sheet().sum()
    assert (plug_one_voxel_holes(_sheet()) == _sheet()).all()  # an intact sheet is left alone


def test_closing_per_sheet_closes_a_gap_but_never_bridges_two_sheets() -> None:
    from scipy import ndimage

    prob = np.zeros((24, 30, 30), dtype=np.float32)
    prob[6:9, 2:-2, 2:-2] = 0.9  # a 3-voxel-thick sheet...
    prob[6:9, 2:-2, 14] = 0.0  # ...with a 1-voxel slit through it, joined at two rows (one component)
    prob[6:9, 14:16, 14] = 0.9
    prob[12:15, 2:-2, 2:-2] = 0.9  # a second sheet, 3 background voxels above
    base = dict(threshold=0.5, min_component_voxels=0, fill_holes="none")
    opened = postprocess(prob, PostConfig(**base))
    closed = postprocess(prob, PostConfig(**base, closing_radius=2))
    assert opened[7, 5, 14] == 0 and closed[7, 5, 14] == 1, "the slit is closed"
    assert closed[9:12].sum() == 0, "the gap between the two sheets stays open"
    grid = np.ogrid[-2:3, -2:3, -2:3]
    ball = sum(g * g for g in grid) <= 4
    assert ndimage.binary_closing(opened.astype(bool), ball)[9:12].any(), "a global closing would bridge them"


def test_small_cavity_filling_respects_the_size_limit() -> None:
    mask = np.zeros((20, 20, 20), dtype=np.float32)
    mask[2:9, 2:9, 2:9] = 1.0
    mask[4:7, 4:7, 4:7] = 0.0  # 27-voxel cavity
    mask[11:16, 11:16, 11:16] = 1.0
    mask[13, 13, 13] = 0.0  # 1-voxel cavity
    small = postprocess(mask, PostConfig(min_component_voxels=0, max_hole_voxels=1))
    assert small[13, 13, 13] == 1 and small[5, 5, 5] == 0
    every = postprocess(mask, PostConfig(min_component_voxels=0, max_hole_voxels=0))
    assert every[13, 13, 13] == 1 and every[5, 5, 5] == 1


def test_mean_probability_floor_drops_a_large_faint_component() -> None:
    prob = np.zeros((20, 20, 20), dtype=np.float32)
    prob[2:8, 2:8, 2:8] = 0.95
    prob[12:18, 12:18, 12:18] = 0.55
    config = PostConfig(threshold=0.5, min_component_voxels=10, min_component_mean_probability=0.7)
    mask = postprocess(prob, config)
    assert mask[4, 4, 4] == 1 and mask[14, 14, 14] == 0
    assert postprocess(prob, PostConfig(threshold=0.5, min_component_voxels=10))[14, 14, 14] == 1


def test_threshold_rules_follow_each_volume() -> None:
    rng = np.random.default_rng(0)
    prob = rng.random((40, 40, 40)).astype(np.float32)
    hist = probability_histogram(prob)
    assert hist.sum() == prob.size
    t = rule_threshold(hist, "foreground_fraction", 0.5, 0.1, 0.999, 0.5)
    assert abs((prob >= t).mean() - 0.1) < 0.002
    # relative: half the volume's 99.9 % quantile; a map scaled by 0.5 gets a threshold halved
    t_full = rule_threshold(hist, "relative_quantile", 0.5, 0.1, 0.999, 0.5)
    t_half = rule_threshold(probability_histogram(prob * 0.5), "relative_quantile", 0.5, 0.1, 0.999, 0.5)
    assert abs(t_full - 0.5) < 2 / 1024 and abs(t_half - 0.25) < 2 / 1024
    assert rule_threshold(hist, "fixed", 0.3, 0.1, 0.999, 0.5) == 0.3
    config = PostConfig(threshold_rule="foreground_fraction", foreground_fraction=0.1, min_component_voxels=0,
                        fill_holes="none")
    assert abs(postprocess(prob, config).mean() - 0.1) < 0.002


def test_bad_topology_settings_are_all_reported() -> None:
    with pytest.raises(OfflinepackError) as info:
        PostConfig(threshold_rule="otsu", foreground_fraction=2.0, closing_radius=-1, plug_holes="yes")
    text = "\n".join(info.value.lines())
    for name in ("threshold_rule", "foreground_fraction", "closing_radius", "plug_holes"):
        assert f"post.{name}" in text
