"""Sliding-window maths as pure functions, identical to nnU-Net v2's so results are comparable.

`compute_steps_for_sliding_window`, `gaussian_importance_map` and `pad_amounts` reproduce
nnunetv2.inference.sliding_window_prediction and acvl_utils' `pad_nd_image` (numbers, rounding and
fp16 zero replacement included); tests check them against nnU-Net's own functions.
No torch here: sliding_window.py turns these into tensors.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = [
    "compute_steps_for_sliding_window",
    "gaussian_importance_map",
    "pad_amounts",
    "tile_origins",
    "mirror_combinations",
]


def compute_steps_for_sliding_window(
    image_size: Sequence[int], tile_size: Sequence[int], tile_step_size: float
) -> list[list[int]]:
    """Tile start positions per axis: the fewest steps of at most `tile_size * step` that cover the
    image, spread evenly (nnU-Net's rule). The image must be at least one tile in every axis."""
    if len(image_size) != len(tile_size):
        raise ValueError(f"image {tuple(image_size)} and tile {tuple(tile_size)} have different dimensions")
    if any(i < t for i, t in zip(image_size, tile_size)):
        raise ValueError(f"image {tuple(image_size)} is smaller than the tile {tuple(tile_size)}: pad it first")
    if not 0 < tile_step_size <= 1:
        raise ValueError(f"step size must be in (0, 1], got {tile_step_size}")
    target_steps = [t * tile_step_size for t in tile_size]
    num_steps = [int(np.ceil((i - t) / s)) + 1 for i, s, t in zip(image_size, target_steps, tile_size)]
    steps = []
    for dim in range(len(tile_size)):
        max_step = image_size[dim] - tile_size[dim]
        actual = max_step / (num_steps[dim] - 1) if num_steps[dim] > 1 else 99999999999
        steps.append([int(np.round(actual * i)) for i in range(num_steps[dim])])
    return steps


@lru_cache(maxsize=8)
def _gaussian(tile_size: tuple[int, ...], sigma_scale: float, value_scaling_factor: float, dtype: str) -> np.ndarray:
    tmp = np.zeros(tile_size)
    tmp[tuple(i // 2 for i in tile_size)] = 1
    gmap = gaussian_filter(tmp, [i * sigma_scale for i in tile_size], 0, mode="constant", cval=0)
    gmap /= np.max(gmap) / value_scaling_factor
    gmap = gmap.astype(dtype)
    # zero weights would divide by zero where only a tile's corner covers a voxel
    zero = gmap == 0
    if zero.any():
        gmap[zero] = gmap[~zero].min()
    gmap.flags.writeable = False
    return gmap


def gaussian_importance_map(
    tile_size: Sequence[int],
    sigma_scale: float = 1.0 / 8,
    value_scaling_factor: float = 10.0,
    dtype: str = "float16",
) -> np.ndarray:
    """nnU-Net's tile weighting: a Gaussian (sigma = tile/8) peaking at `value_scaling_factor`, cast to
    `dtype` (nnU-Net uses fp16; values that underflow become the smallest non-zero weight).
    Returns a read-only array; copy it before changing it."""
    return _gaussian(tuple(int(t) for t in tile_size), float(sigma_scale), float(value_scaling_factor), str(dtype))


def pad_amounts(image_size: Sequence[int], min_size: Sequence[int]) -> list[tuple[int, int]]:
    """(before, after) padding per axis that grows `image_size` to at least `min_size`, content
    centred and the odd voxel after it (acvl_utils `pad_nd_image`); axes already large enough: (0, 0)."""
    pads = []
    for size, target in zip(image_size, min_size):
        diff = max(int(target) - int(size), 0)
        pads.append((diff // 2, diff // 2 + diff % 2))
    return pads


def tile_origins(image_size: Sequence[int], tile_size: Sequence[int], tile_step_size: float) -> list[tuple[int, ...]]:
    """Every tile's start corner, in nnU-Net's order (first axis outermost)."""
    steps = compute_steps_for_sliding_window(image_size, tile_size, tile_step_size)
    return [tuple(origin) for origin in itertools.product(*steps)]


def mirror_combinations(axes: Sequence[int]) -> list[tuple[int, ...]]:
    """The flips mirror TTA averages: no flip first, then every non-empty combination of `axes`
    (nnU-Net's order: singles, then pairs, ...). 3 axes give 8 passes."""
    axes = tuple(sorted(set(int(a) for a in axes)))
    return [()] + [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]
