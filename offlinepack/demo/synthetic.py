"""Synthetic papyrus-like sheet volumes with their surface labels (numpy/scipy only).

A volume holds a few wavy, roughly parallel sheets a few voxels thick: they share one smooth
displacement field (layers of a rolled scroll bend together) plus a small own wobble each, so they
never cross. Sheets carry a fibrous texture; the background holds noise and unlabelled bright blobs
(so a plain intensity threshold is not the answer). The normal axis is random. The label is 1 on
sheet voxels, 0 elsewhere, like the competition's surface class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class SheetVolume:
    image: np.ndarray  # (Z,H,W) uint8
    label: np.ndarray  # (Z,H,W) uint8 {0,1}


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], amplitude: float, waves: int) -> np.ndarray:
    """A sum of a few low-frequency sine waves over a 2D grid."""
    a, b = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    field = np.zeros(shape, dtype=np.float32)
    for _ in range(waves):
        fa, fb = rng.uniform(0.3, 2.0, size=2) / max(shape)
        phase = rng.uniform(0, 2 * np.pi)
        field += np.sin(2 * np.pi * (fa * a + fb * b) + phase).astype(np.float32)
    return amplitude * field / max(waves, 1)


def make_sheet_volume(
    shape: tuple[int, int, int] = (128, 128, 128),
    *,
    seed: int = 0,
    sheets: int | None = None,
    noise: float = 18.0,
) -> SheetVolume:
    """One synthetic volume and its label; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    normal_axis = int(rng.integers(0, 3))
    # build with the sheets' normal along axis 1, then move that axis into place
    order = [a for a in range(3) if a != normal_axis]
    size_a, size_n, size_b = shape[order[0]], shape[normal_axis], shape[order[1]]
    count = sheets or int(rng.integers(3, 6))
    spacing = size_n / (count + 1)
    shared = _smooth_field(rng, (size_a, size_b), amplitude=spacing * 0.6, waves=3)
    depth = np.arange(size_n, dtype=np.float32)[None, :, None]
    label = np.zeros((size_a, size_n, size_b), dtype=bool)
    texture = ndimage.gaussian_filter(rng.normal(0, 1, (size_a, size_n, size_b)).astype(np.float32), sigma=(4, 0.7, 0.7))
    image = np.full((size_a, size_n, size_b), 45.0, dtype=np.float32)
    for i in range(count):
        centre = (i + 1) * spacing + rng.uniform(-0.1, 0.1) * spacing
        own = _smooth_field(rng, (size_a, size_b), amplitude=spacing * 0.1, waves=2)
        surface = (centre + shared + own)[:, None, :]
        thickness = rng.uniform(2.5, 4.5)
        distance = np.abs(depth - surface)
        inside = distance <= thickness / 2
        label |= inside
        # bright core fading to the faces: a soft sheet profile, like ink-free papyrus in CT
        image += np.clip(1.0 - distance / (thickness / 2 + 1.0), 0, 1) * (95.0 + 30.0 * texture)
    # unlabelled bright blobs between the sheets
    blobs = np.zeros_like(image)
    for _ in range(int(rng.integers(4, 10))):
        centre = [rng.uniform(0, s) for s in image.shape]
        radius = rng.uniform(2.0, 4.0)
        grids = np.ogrid[tuple(slice(0, s) for s in image.shape)]
        dist2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
        blobs = np.maximum(blobs, (dist2 <= radius**2) * rng.uniform(70, 110))
    image += blobs * (~label)
    image = ndimage.gaussian_filter(image, sigma=0.8)
    image += rng.normal(0, noise, image.shape).astype(np.float32)
    image_u8 = np.clip(image, 0, 255).astype(np.uint8)
    back = np.argsort([order[0], normal_axis, order[1]])
    return SheetVolume(
        image=np.ascontiguousarray(image_u8.transpose(back)),
        label=np.ascontiguousarray(label.astype(np.uint8).transpose(back)),
    )
