"""score_volume: the leaderboard's score of one predicted mask against its label volume.

Steps, as the organisers' `compute_leaderboard_score` with the leaderboard's settings: voxels where the label
is 2 (unlabelled) become background in both volumes; both are binarised as `nan_to_num(x) != 0` (so a
prediction voxel of 2 is foreground); then TopoScore, SurfaceDice@2 and VOI (alpha 0.3) are combined with the
weights (0.30, 0.35, 0.35). The per-volume score is clipped to [0, 1] before volumes are averaged.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from offlinepack.score.surface_dice import surface_dice
from offlinepack.score.topo import (DimCounts, TileMatcher, sum_tile_counts, tile_counts, tile_slices,
                                    topo_score_from_counts)
from offlinepack.score.voi import VOI_ALPHA, voi

IGNORE_LABEL = 2
COMBINE_WEIGHTS = (0.30, 0.35, 0.35)  # TopoScore, SurfaceDice, VOI score


@dataclass(frozen=True, slots=True)
class VolumeScore:
    score: float  # the leaderboard's per-volume score, clipped to [0, 1]
    raw_score: float  # before clipping (identical volumes give 1.0000000000000002)
    topo_score: float
    surface_dice: float
    voi_score: float
    voi_split: float  # H(pred | label), bits
    voi_merge: float  # H(label | pred), bits
    betti: tuple[DimCounts, DimCounts, DimCounts]  # per homology dimension 0, 1, 2, summed over the 8 tiles

    @property
    def topo_f1(self) -> tuple[float | None, float | None, float | None]:
        return tuple(d.f1 for d in self.betti)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score, "raw_score": self.raw_score, "topo_score": self.topo_score,
            "surface_dice": self.surface_dice, "voi_score": self.voi_score,
            "voi_split": self.voi_split, "voi_merge": self.voi_merge,
            "betti": [{"dim": k, "matched": d.matched, "pred": d.pred, "label": d.label, "f1": d.f1}
                      for k, d in enumerate(self.betti)],
        }


def foreground_masks(pred: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pred_fg, label_fg) as booleans: label 2 ignored in both, then `nan_to_num(x) != 0`."""
    pred, label = np.asarray(pred), np.asarray(label)
    if pred.shape != label.shape:
        raise ValueError(f"prediction and label shapes differ: {pred.shape} vs {label.shape}")
    if pred.ndim != 3:
        raise ValueError(f"volumes must be 3D (Z, H, W), got {pred.ndim}D {pred.shape}")
    keep = label != IGNORE_LABEL

    def nonzero(volume: np.ndarray) -> np.ndarray:
        if volume.dtype.kind == "f" or volume.dtype.kind == "c":
            volume = np.nan_to_num(volume, nan=0.0)
        return volume != 0

    return nonzero(pred) & keep, nonzero(label) & keep


def combine(topo: float, sdice: float, voi_score: float, weights: tuple[float, float, float] = COMBINE_WEIGHTS) -> float:
    """The official combination, literally: weights clamped, divided by their Python sum, summed left to right
    (the order of float operations decides the last bit: identical volumes give 1.0000000000000002)."""
    clamped = [0.0 if (not np.isfinite(w) or w < 0) else float(w) for w in weights]
    total = sum(clamped)
    if total <= 0:
        clamped, total = [1.0, 1.0, 1.0], 3.0
    w_topo, w_surf, w_voi = clamped[0] / total, clamped[1] / total, clamped[2] / total
    return w_topo * float(topo) + w_surf * sdice + w_voi * float(voi_score)


def clip_score(score: float) -> float:
    return min(1.0, max(0.0, score))


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_warm = False


def warm_up() -> None:
    """Load (or compile) every numba function once in this process, so forked workers inherit them instead of
    each loading numba's cache again (seconds per process on a busy machine)."""
    global _warm
    if _warm:
        return
    pred = np.zeros((16, 16, 16), np.uint8)  # in the first 8^3 tile: a hollow box (a cavity) and a ring (a tunnel)
    pred[1:6, 1:6, 1:6] = 1
    pred[2:5, 2:5, 2:5] = 0
    pred[7, 1:6, 1:6] = 1
    pred[7, 2:5, 2:5] = 0
    score_volume(pred, np.roll(pred, 1, axis=2))
    _warm = True


def process_pool(workers: int) -> Executor:
    """Worker processes; forked on Linux (no re-import, numba's compiled code shared), spawned elsewhere."""
    import multiprocessing

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
    if method == "fork":
        warm_up()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))


def score_volume(pred: np.ndarray, label: np.ndarray, *, workers: int = 1,
                 matcher: TileMatcher | None = None) -> VolumeScore:
    """Score one (Z, H, W) prediction against its label volume (uint8 0/1/2; any dtype works).

    `workers` > 1 runs the 8 Betti tiles and SurfaceDice in that many processes (VOI stays here);
    `matcher` replaces offlinepack's Betti matching (tests use the reference module through it).
    """
    pred_fg, label_fg = foreground_masks(pred, label)
    tiles = tile_slices(pred_fg.shape)
    if workers > 1:
        with process_pool(workers) as pool:
            sdice_job = pool.submit(surface_dice, pred_fg, label_fg)
            tile_jobs = [pool.submit(tile_counts, np.ascontiguousarray(pred_fg[t]), np.ascontiguousarray(label_fg[t]),
                                     matcher) for t in tiles]
            voi_result = voi(pred_fg, label_fg, VOI_ALPHA)
            per_tile = [job.result() for job in tile_jobs]
            sdice = sdice_job.result()
    else:
        per_tile = [tile_counts(pred_fg[t], label_fg[t], matcher) for t in tiles]
        sdice = surface_dice(pred_fg, label_fg)
        voi_result = voi(pred_fg, label_fg, VOI_ALPHA)
    topo = topo_score_from_counts(sum_tile_counts(per_tile))
    raw = combine(topo.score, sdice, voi_result.score)
    return VolumeScore(score=clip_score(raw), raw_score=raw, topo_score=topo.score, surface_dice=sdice,
                       voi_score=voi_result.score, voi_split=voi_result.split, voi_merge=voi_result.merge,
                       betti=topo.dims)
