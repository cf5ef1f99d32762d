"""Synthetic scroll-like volumes: several parallel curved sheets 1-2 voxels thick, as label and as a flawed prediction.

The prediction has the flaws that move the metric's components: sheets shifted by a voxel, holes punched through,
bridges that merge neighbouring sheets, speckle, a missing sheet. The label has an unlabelled (2) slab.
"""

from __future__ import annotations

import numpy as np


def _sheet(shape: tuple[int, int, int], rng: np.random.Generator, z0: float, thickness: float,
           shift: float = 0.0) -> np.ndarray:
    depth, height, width = shape
    y = np.arange(height)[:, None]
    x = np.arange(width)[None, :]
    amplitude = rng.uniform(1.0, 4.0)
    surface = (z0 + shift + amplitude * np.sin(2 * np.pi * x / rng.uniform(40, 120) + rng.uniform(0, 6.3))
               + amplitude * 0.6 * np.cos(2 * np.pi * y / rng.uniform(40, 120) + rng.uniform(0, 6.3)))
    z = np.arange(depth)[:, None, None]
    return np.abs(z - surface[None]) <= thickness / 2


def sheet_pair(shape: tuple[int, int, int], seed: int = 0, sheets: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """(prediction uint8 0/1, label uint8 0/1/2) of one shape."""
    rng = np.random.default_rng(seed)
    depth, height, width = shape
    label = np.zeros(shape, dtype=bool)
    pred = np.zeros(shape, dtype=bool)
    spacing = depth / (sheets + 1)
    for index in range(sheets):
        z0 = spacing * (index + 1)
        thickness = float(rng.choice([1.0, 2.0]))
        state = rng.bit_generator.state
        label |= _sheet(shape, rng, z0, thickness)
        if index == sheets - 1 and sheets > 2:
            continue  # a sheet the model missed
        rng.bit_generator.state = state  # the same sheet, sometimes shifted by a voxel
        pred |= _sheet(shape, rng, z0, thickness, shift=float(rng.choice([0.0, 0.0, 1.0, -1.0])))
    # holes through the prediction
    for _ in range(max(1, height * width // 4000)):
        cy, cx, r = rng.integers(0, height), rng.integers(0, width), rng.integers(2, 7)
        yy, xx = np.ogrid[:height, :width]
        pred[:, (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] &= rng.random() < 0.3
    # bridges between neighbouring sheets
    for _ in range(max(1, height * width // 8000)):
        cy, cx = rng.integers(0, height - 2), rng.integers(0, width - 2)
        z0 = int(rng.integers(0, max(1, depth - int(spacing) - 1)))
        pred[z0:z0 + int(spacing) + 1, cy:cy + 2, cx:cx + 2] = True
    # speckle
    pred |= rng.random(shape) < 2e-4
    pred &= ~(rng.random(shape) < 2e-3)
    out = label.astype(np.uint8)
    # an unlabelled slab at one side
    out[:, :, : max(1, width // 10)][rng.random((depth, height, max(1, width // 10))) < 0.5] = 2
    return pred.astype(np.uint8), out
