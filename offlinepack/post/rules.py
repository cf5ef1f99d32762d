"""Per-volume threshold rules: each volume's threshold from its own probability histogram.

A model's probabilities drift between volumes (contrast, scroll, depth): one global threshold is then
right for some and wrong for others. The rules, fitted on labelled volumes by `offlinepack calibrate`:
- "fixed": `threshold` for every volume (the default);
- "foreground_fraction": the threshold that keeps the top `foreground_fraction` of the volume's voxels;
- "relative_quantile": `rule_factor` x the volume's `rule_quantile` quantile (a threshold relative to how
  confident the model is on this volume: scaled-down maps get a scaled-down threshold).
Both read a 1024-bin histogram (computed once per volume, cached by the calibrator), so the threshold's
resolution is 1/1024, and are clamped into [0.01, 0.99]. Hysteresis keeps its ratio: the low threshold
is `hysteresis_low * volume threshold / threshold`.
"""

from __future__ import annotations

import numpy as np

THRESHOLD_RULES = ("fixed", "foreground_fraction", "relative_quantile")
BINS = 1024
LOWEST, HIGHEST = 0.01, 0.99


def probability_histogram(probability: np.ndarray) -> np.ndarray:
    """Counts of voxels per 1/1024-wide probability bin (int64, length 1024)."""
    index = np.minimum((probability.astype(np.float32, copy=False) * np.float32(BINS)).astype(np.int32), BINS - 1)
    return np.bincount(index.ravel(), minlength=BINS).astype(np.int64)


def rule_threshold(histogram: np.ndarray, rule: str, threshold: float, foreground_fraction: float,
                   rule_quantile: float, rule_factor: float) -> float:
    """The volume's threshold under `rule` (see the module doc) from its histogram."""
    if rule == "fixed":
        return threshold
    total = int(histogram.sum())
    if total == 0:
        return threshold
    if rule == "foreground_fraction":
        tail = np.cumsum(histogram[::-1])[::-1]  # tail[b]: voxels in bins >= b
        wanted = foreground_fraction * total
        reaching = np.nonzero(tail >= wanted)[0]
        value = (reaching[-1] if reaching.size else 0) / BINS
    elif rule == "relative_quantile":
        below = np.cumsum(histogram)
        b = int(np.searchsorted(below, rule_quantile * total))
        value = rule_factor * (min(b, BINS - 1) + 0.5) / BINS
    else:  # PostConfig checks the name first
        raise ValueError(rule)
    return float(min(max(value, LOWEST), HIGHEST))
