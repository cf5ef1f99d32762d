"""TopoScore: Betti matching on the 2x2x2 tiles of a volume, counts summed over tiles, then a weighted F1.

The leaderboard matches each tile separately (the official code tiles to save memory), so the tiling is part
of the score: a tile's edge can cut a loop or a cavity. Per homology dimension k (0 components, 1 tunnels,
2 cavities) m = matched pairs, p = m + unmatched in the prediction, g = m + unmatched in the label, all summed
over the 8 tiles before F1_k = 2m / (p + g) (0.5 / (p + 0.5) when the label has none). Dimensions where both
have nothing are dropped and the weights (0.34, 0.33, 0.33) renormalised over the rest; none left gives 1.0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

TILE_SPLITS = (2, 2, 2)
DIM_WEIGHTS = (0.34, 0.33, 0.33)

# (pred_fg tile, label_fg tile) -> (matched, pred_unmatched, label_unmatched), each a count per dimension 0..2
TileMatcher = Callable[[np.ndarray, np.ndarray], "tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]"]


@dataclass(frozen=True, slots=True)
class DimCounts:
    """One homology dimension's counts, summed over tiles."""

    matched: int
    pred: int  # matched + unmatched in the prediction
    label: int  # matched + unmatched in the label

    @property
    def active(self) -> bool:
        return self.pred + self.label > 0

    @property
    def f1(self) -> float | None:
        """The dimension's topological F1, or None when it is dropped (nothing in either volume)."""
        denominator = self.pred + self.label
        if denominator == 0:
            return None
        if self.label != 0:
            return (2.0 * self.matched) / float(denominator)
        return 0.5 / (float(denominator) + 0.5)  # a pseudo-count: predicted features where the label has none


@dataclass(frozen=True, slots=True)
class TopoResult:
    score: float
    dims: tuple[DimCounts, DimCounts, DimCounts]  # dimensions 0, 1, 2


def axis_cuts(length: int, parts: int) -> list[tuple[int, int]]:
    """Split [0, length) into at most `parts` runs whose sizes differ by at most one, longer runs first."""
    parts = max(1, min(parts, length if length > 0 else 1))
    base, extra = divmod(length, parts)
    cuts, start = [], 0
    for index in range(parts):
        end = start + base + (1 if index < extra else 0)
        cuts.append((start, end))
        start = end
    return cuts


def tile_slices(shape: tuple[int, int, int], splits: tuple[int, int, int] = TILE_SPLITS) -> list[tuple[slice, ...]]:
    """The non-empty tiles of a volume, z-major as the leaderboard walks them."""
    tiles = []
    for z0, z1 in axis_cuts(shape[0], splits[0]):
        for y0, y1 in axis_cuts(shape[1], splits[1]):
            for x0, x1 in axis_cuts(shape[2], splits[2]):
                if z1 > z0 and y1 > y0 and x1 > x0:
                    tiles.append((slice(z0, z1), slice(y0, y1), slice(x0, x1)))
    return tiles


def default_matcher() -> TileMatcher:
    """offlinepack's own Betti matching (numba), as (matched, pred_unmatched, label_unmatched)."""
    from offlinepack.score.betti import match_tile

    def match(pred_tile: np.ndarray, label_tile: np.ndarray):
        result = match_tile(pred_tile, label_tile)
        return result.matched, result.pred_unmatched, result.label_unmatched

    return match


def tile_counts(pred_tile: np.ndarray, label_tile: np.ndarray,
                matcher: TileMatcher | None = None) -> tuple[tuple[int, int, int], ...]:
    """One tile's (matched, pred_unmatched, label_unmatched) per dimension; module-level so processes can run it."""
    match = matcher or default_matcher()
    matched, pred_unmatched, label_unmatched = match(np.ascontiguousarray(pred_tile, dtype=bool),
                                                     np.ascontiguousarray(label_tile, dtype=bool))
    return tuple(tuple(int(v) for v in counts) for counts in (matched, pred_unmatched, label_unmatched))


def sum_tile_counts(per_tile: Iterable[tuple[tuple[int, int, int], ...]]) -> tuple[DimCounts, DimCounts, DimCounts]:
    matched, pred, label = [0, 0, 0], [0, 0, 0], [0, 0, 0]
    for tile_matched, tile_pred_unmatched, tile_label_unmatched in per_tile:
        for k in range(3):
            matched[k] += tile_matched[k]
            pred[k] += tile_matched[k] + tile_pred_unmatched[k]
            label[k] += tile_matched[k] + tile_label_unmatched[k]
    return tuple(DimCounts(matched[k], pred[k], label[k]) for k in range(3))  # type: ignore[return-value]


def topo_score_from_counts(dims: tuple[DimCounts, DimCounts, DimCounts]) -> TopoResult:
    """The weighted F1 over the active dimensions, evaluated as the official numpy expression does (the
    weights renormalised by their numpy sum, then a numpy sum of products) so the last bits agree too."""
    active = [k for k in range(3) if dims[k].active]
    if not active:
        return TopoResult(1.0, dims)
    weights = np.array([DIM_WEIGHTS[k] for k in active], dtype=float)
    weights = weights / weights.sum()
    values = np.array([dims[k].f1 for k in active], dtype=float)
    return TopoResult(float((weights * values).sum()), dims)


def topo_score(pred_fg: np.ndarray, label_fg: np.ndarray, matcher: TileMatcher | None = None) -> TopoResult:
    """TopoScore of two boolean masks, tile after tile in this process."""
    match = matcher or default_matcher()
    per_tile = [tile_counts(pred_fg[tile], label_fg[tile], match) for tile in tile_slices(pred_fg.shape)]
    return topo_score_from_counts(sum_tile_counts(per_tile))
