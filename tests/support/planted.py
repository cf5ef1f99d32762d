"""Labelled sets with planted distortions, made at test time from synthetic sheet labels.

Each probability map is `scale * sigmoid(6 * (smoothed_label - 0.5))` (so the label's boundary sits at
probability scale/2: the best global threshold is near scale/2), plus optional speckle: bright 3x3x3 cubes
(27 voxels, probability `scale`) away from the sheets, which no threshold removes and a component size
>= 28 does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from offlinepack.demo.sample import write_lzw_tiff
from offlinepack.demo.synthetic import make_sheet_volume
from offlinepack.probabilities import encode


def planted_map(label: np.ndarray, scale: float, speckles: int, seed: int) -> np.ndarray:
    smooth = ndimage.gaussian_filter(label.astype(np.float32), 1.0)
    prob = scale / (1.0 + np.exp(-6.0 * (smooth - 0.5) * 4.0))
    rng = np.random.default_rng(seed)
    far = ndimage.distance_transform_edt(label == 0) > 4
    placed = 0
    for _ in range(speckles * 20):
        if placed >= speckles:
            break
        z, y, x = (int(rng.integers(1, s - 2)) for s in label.shape)
        if far[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2].all():
            prob[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2] = scale
            far[max(z - 3, 0):z + 4, max(y - 3, 0):y + 4, max(x - 3, 0):x + 4] = False
            placed += 1
    return prob.astype(np.float32)


def write_planted_set(folder: Path, scales: list[float], *, shape=(48, 48, 48), speckles: int = 6,
                      seed: int = 0, dtype: str = "uint8") -> tuple[Path, Path]:
    """`folder/probs/<id>.npy` and `folder/labels/<id>.tif`, one volume per scale; returns both folders."""
    probs, labels = Path(folder) / "probs", Path(folder) / "labels"
    probs.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index, scale in enumerate(scales):
        ident = f"{index:03d}"
        label = make_sheet_volume(shape, seed=seed + index, noise=0.0).label
        np.save(probs / f"{ident}.npy", encode(planted_map(label, scale, speckles, seed + index), dtype))
        write_lzw_tiff(label, labels / f"{ident}.tif")
    return probs, labels
