"""The slow, independent reference scorer: the leaderboard formula assembled from the reference implementations.

Betti matching: the compiled module of the topolosses 0.2.0 wheel (tests/support/betti_reference.py), tiled 2x2x2
as the official code tiles; SurfaceDice: DeepMind's `surface-distance` 0.1 (distance transform + sort);
VOI: cc3d labels and scikit-image's `variation_of_information`, with the official crop-to-union-box rule.
Written from the official `topometrics` steps; shares no code with offlinepack.score, so a test comparing the two
compares two implementations.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from tests.support.betti_reference import reference_match_counts

ALPHA = 0.3
WEIGHTS = (0.3, 0.35, 0.35)
DIM_WEIGHTS = {0: 0.34, 1: 0.33, 2: 0.33}


@dataclass(frozen=True)
class ReferenceScore:
    score: float  # clipped
    raw_score: float
    topo_score: float
    surface_dice: float
    voi_score: float
    voi_split: float
    voi_merge: float
    counts: dict  # dim -> (m, p, g)


def _surface_distance():
    import surface_distance

    if not hasattr(np, "Inf"):  # surface-distance 0.1 spells np.Inf, gone in numpy 2 (only hit for empty borders)
        np.Inf = np.inf
    return surface_distance


def _cuts(n: int, parts: int) -> list[tuple[int, int]]:
    parts = max(1, min(parts, n if n > 0 else 1))
    out, start = [], 0
    for i in range(parts):
        size = n // parts + (1 if i < n % parts else 0)
        out.append((start, start + size))
        start += size
    return out


def reference_topo(pred_bin: np.ndarray, gt_bin: np.ndarray) -> tuple[float, dict]:
    combined = {k: (0, 0, 0) for k in range(3)}
    for z0, z1 in _cuts(pred_bin.shape[0], 2):
        for y0, y1 in _cuts(pred_bin.shape[1], 2):
            for x0, x1 in _cuts(pred_bin.shape[2], 2):
                counts = reference_match_counts(pred_bin[z0:z1, y0:y1, x0:x1], gt_bin[z0:z1, y0:y1, x0:x1])
                for k in range(3):
                    m, pu, gu = counts[k]
                    M, P, G = combined[k]
                    combined[k] = (M + m, P + m + pu, G + m + gu)
    f1, active = {}, []
    for k in range(3):
        m, p, g = combined[k]
        if p + g > 0:
            f1[k] = (2.0 * m) / float(p + g) if g != 0 else 0.5 / (float(p + g) + 0.5)
            active.append(k)
    if not active:
        return 1.0, combined
    w = np.array([DIM_WEIGHTS[k] for k in active], dtype=float)
    w = w / w.sum()
    return float((w * np.array([f1[k] for k in active], dtype=float)).sum()), combined


def reference_surface_dice(pred_bin: np.ndarray, gt_bin: np.ndarray) -> float:
    if not gt_bin.any() and not pred_bin.any():
        return 1.0
    if gt_bin.any() ^ pred_bin.any():
        return 0.0
    sd = _surface_distance()
    with warnings.catch_warnings():  # it spells scipy.ndimage.filters/morphology, deprecated namespaces
        warnings.simplefilter("ignore", DeprecationWarning)
        distances = sd.compute_surface_distances(gt_bin.astype(bool), pred_bin.astype(bool), (1.0, 1.0, 1.0))
    return float(sd.compute_surface_dice_at_tolerance(distances, 2.0))


def reference_voi(pred_bin: np.ndarray, gt_bin: np.ndarray) -> tuple[float, float, float]:
    """(split, merge, score) with the official crop rule: crop to the union's box only when it is <= 0.7 of the volume."""
    import cc3d
    from skimage.metrics import variation_of_information

    union = gt_bin | pred_bin
    if not union.any():
        return 0.0, 0.0, 1.0
    box = []
    for axis in range(3):
        idx = np.flatnonzero(union.any(axis=tuple(i for i in range(3) if i != axis)))
        box.append(slice(int(idx[0]), int(idx[-1]) + 1))
    box = tuple(box)
    box_n = int(np.prod([s.stop - s.start for s in box]))
    crop = box_n <= int(0.7 * int(np.prod(gt_bin.shape, dtype=np.int64)))
    gt_use, pred_use = (gt_bin[box], pred_bin[box]) if crop else (gt_bin, pred_bin)
    gt_lab = cc3d.connected_components(gt_use.astype(np.uint8), connectivity=26)
    pred_lab = cc3d.connected_components(pred_use.astype(np.uint8), connectivity=26)
    m = (gt_lab > 0) | (pred_lab > 0)
    split, merge = variation_of_information(gt_lab[m], pred_lab[m])
    total = float(split + merge)
    return float(split), float(merge), float(1.0 / (1.0 + ALPHA * total))


def reference_score(pred: np.ndarray, label: np.ndarray) -> ReferenceScore:
    pred, label = np.asarray(pred), np.asarray(label)
    assert pred.shape == label.shape and pred.ndim == 3
    ignore = label == 2
    pred_bin = np.nan_to_num(np.where(ignore, 0, pred), nan=0.0) != 0
    gt_bin = np.nan_to_num(np.where(ignore, 0, label), nan=0.0) != 0
    topo, counts = reference_topo(pred_bin, gt_bin)
    sdice = reference_surface_dice(pred_bin, gt_bin)
    split, merge, voi_score = reference_voi(pred_bin, gt_bin)
    w = [float(x) for x in WEIGHTS]
    s = sum(w)
    w_topo, w_surf, w_voi = w[0] / s, w[1] / s, w[2] / s
    raw = w_topo * float(topo) + w_surf * sdice + w_voi * float(voi_score)
    return ReferenceScore(min(1.0, max(0.0, raw)), raw, topo, sdice, voi_score, split, merge, counts)


def reference_tile_matcher(pred_tile: np.ndarray, label_tile: np.ndarray):
    """The reference Betti counts in offlinepack's TileMatcher shape (matched, pred_unmatched, label_unmatched),
    each per dimension: lets a test run offlinepack's tiling and F1 over the reference matching."""
    per_dim = reference_match_counts(pred_tile, label_tile)
    return tuple(tuple(per_dim[k][i] for k in range(3)) for i in range(3))
