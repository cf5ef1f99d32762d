"""Validation that does not fool: K-fold selection on a score matrix, bootstrap intervals over volumes.

The score matrix holds one row per setting and one column per volume (NaN where early stopping dropped
the setting before that volume). Cross-validation repeats the *whole selection* on K-1 folds (pick the
setting with the best mean there) and scores the pick on the held-out fold, so the figure is what the
procedure earns on volumes it did not see. Intervals: percentile bootstrap (2000 resamples of volumes,
fixed seed) of the mean; a gain's interval is the paired bootstrap of per-volume differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A mean over volumes and its bootstrap 95 % interval."""

    mean: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"mean": round(self.mean, 6), "low": round(self.low, 6), "high": round(self.high, 6)}

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.low:.4f}, {self.high:.4f}]"


def bootstrap(values: np.ndarray, seed: int = 0) -> Interval:
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(RESAMPLES, values.size))].mean(axis=1)
    return Interval(float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def folds(count: int, k: int, seed: int = 0) -> np.ndarray:
    """Fold number per volume: a seeded shuffle dealt round-robin, so folds differ in size by at most 1."""
    k = max(2, min(k, count))
    order = np.random.default_rng(seed).permutation(count)
    assignment = np.empty(count, dtype=np.int64)
    assignment[order] = np.arange(count) % k
    return assignment


def best_row(matrix: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> int:
    """The row among `rows` with the best mean over `columns`; rows with a missing value there do not count
    (ties: the earlier row, so the result never depends on evaluation order)."""
    sub = matrix[np.ix_(rows, columns)]
    complete = ~np.isnan(sub).any(axis=1)
    if not complete.any():
        raise ValueError("no setting was scored on every training volume")
    means = np.where(complete, np.nan_to_num(sub, nan=0.0).mean(axis=1), -np.inf)
    return int(rows[int(np.argmax(means))])


def cross_validate(matrix: np.ndarray, rows: np.ndarray | list[np.ndarray],
                   assignment: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Per-volume held-out scores of 'pick the best of `rows` on the other folds', and each fold's pick.
    `rows` may be one array for every fold, or one per fold (the halving search's finalists of each fold,
    screened on that fold's training volumes only)."""
    held_out = np.full(matrix.shape[1], np.nan)
    picks = []
    folds = int(assignment.max()) + 1
    per_fold = rows if isinstance(rows, list) else [rows] * folds
    for fold in range(folds):
        test = np.nonzero(assignment == fold)[0]
        train = np.nonzero(assignment != fold)[0]
        if test.size == 0:
            continue
        candidates = np.asarray(per_fold[fold], dtype=np.int64)
        candidates = candidates[~np.isnan(matrix[candidates]).any(axis=1)]  # only settings scored on every volume
        pick = best_row(matrix, candidates, train)
        picks.append(pick)
        held_out[test] = matrix[pick, test]
    return held_out, picks

