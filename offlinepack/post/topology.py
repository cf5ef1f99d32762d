"""The competition winners' topology steps on a binary mask: closing per connected sheet, filling of small
cavities, plugging 1-voxel holes, and dropping components by size or mean probability.

Each is optional (PostConfig) and works on numpy arrays only; costs per 320^3 volume are measured by
scripts/bench_post.py (BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _ball(radius: int) -> np.ndarray:
    grid = np.ogrid[tuple(slice(-radius, radius + 1) for _ in range(3))]
    return sum(g * g for g in grid) <= radius * radius


def filter_components(
    mask: np.ndarray, labels: np.ndarray, count: int, probability: np.ndarray | None,
    min_voxels: int, min_mean_probability: float,
) -> np.ndarray:
    """Keep 26-connected components with >= `min_voxels` voxels and mean probability >= the floor
    (one labelling, both rules; `labels` from post.process._label)."""
    if count == 0:
        return mask.astype(bool, copy=False)
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count + 1)
    keep = sizes >= max(min_voxels, 1)
    if min_mean_probability > 0.0 and probability is not None:
        sums = np.bincount(flat, weights=probability.ravel().astype(np.float64), minlength=count + 1)
        keep &= sums >= min_mean_probability * sizes  # mean >= floor, without dividing by zero
    keep[0] = False
    return keep[labels]


def close_per_sheet(mask: np.ndarray, labels: np.ndarray, count: int, radius: int) -> np.ndarray:
    """Morphological closing (ball of `radius`) of each connected component on its own, so gaps inside a
    sheet close while two neighbouring sheets are never bridged (a global closing would merge them)."""
    if radius <= 0 or count == 0:
        return mask.astype(bool, copy=False)
    out = mask.astype(bool, copy=True)
    ball = _ball(radius)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        # pad by the radius inside the volume: the closing may reach that far from the component
        lo = [max(s.start - radius, 0) for s in box]
        hi = [min(s.stop + radius, n) for s, n in zip(box, mask.shape)]
        window = tuple(slice(a, b) for a, b in zip(lo, hi))
        part = labels[window] == index
        # pad with background outside the volume so the faces do not erode the sheet
        padded = np.pad(part, radius)
        closed = ndimage.binary_closing(padded, structure=ball)[(slice(radius, -radius),) * 3]
        out[window] |= closed
    return out


def fill_small_cavities(mask: np.ndarray, max_voxels: int, label_background) -> np.ndarray:
    """Fill background regions (6-connected) enclosed in 3D that hold at most `max_voxels` voxels.
    `label_background(mask) -> (labels, count)` labels ~mask 6-connected."""
    if max_voxels <= 0 or mask.all() or not mask.any():
        return mask.astype(bool, copy=False)
    labels, count = label_background(mask)
    outside = np.zeros(count + 1, dtype=bool)
    for face in (labels[0], labels[-1], labels[:, 0], labels[:, -1], labels[:, :, 0], labels[:, :, -1]):
        outside[np.unique(face)] = True
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    fill = (~outside) & (sizes <= max_voxels)
    fill[0] = False
    return mask.astype(bool, copy=False) | fill[labels]


def plug_one_voxel_holes(mask: np.ndarray) -> np.ndarray:
    """Set background voxels that have foreground on both sides along at least two axes: a 1-voxel hole
    through a sheet (4 in-plane neighbours set), which changes the sheet's topology (a handle)."""
    mask = mask.astype(bool, copy=False)
    both = np.zeros(mask.shape, dtype=np.uint8)
    for axis in range(3):
        if mask.shape[axis] < 3:
            continue
        inner = [slice(None)] * 3
        before, after = list(inner), list(inner)
        inner[axis], before[axis], after[axis] = slice(1, -1), slice(0, -2), slice(2, None)
        both[tuple(inner)] += mask[tuple(before)] & mask[tuple(after)]
    return mask | ((both >= 2) & ~mask)
