"""nnU-Net's preprocessing and its inverse, in torch so it runs on the volume's device.

Order as in nnunetv2's DefaultPreprocessor.run_case_npy: float32 -> transpose_forward -> crop to the
bounding box of non-zero voxels -> normalise. Resampling is not done (inputs are taken to have the
model's spacing). `restore` undoes it for a probability map: outside the crop the surface
probability is `fill` (nnU-Net sets background to 1 there), then transpose_backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from offlinepack.models.base import Normalization, Preprocessing

_EPS = 1e-8


@dataclass(frozen=True)
class Prepared:
    """Network-ready data (channels, z, y, x) plus what `restore` needs."""

    data: torch.Tensor
    bbox: tuple[tuple[int, int], ...]
    transposed_shape: tuple[int, ...]


def nonzero_bbox(volume: torch.Tensor) -> tuple[tuple[int, int], ...]:
    """[start, stop) per axis of the non-zero voxels; the whole volume when all are zero.
    (nnU-Net fills holes in the mask first; holes never reach the bounding box, so it is the same.)"""
    nonzero = volume != 0
    box = []
    for axis in range(volume.ndim):
        others = tuple(a for a in range(volume.ndim) if a != axis)
        hits = torch.nonzero(nonzero.any(dim=others)).flatten()
        if hits.numel() == 0:
            return tuple((0, int(s)) for s in volume.shape)
        box.append((int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def normalize(image: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """Normalise a float32 image in place-safe fashion (returns a new tensor)."""
    if norm.kind == "ct":
        image = image.clamp(norm.lower, norm.upper)
        return (image - norm.mean) / max(norm.std, _EPS)
    if norm.kind == "affine":
        return (image - norm.mean) / max(norm.std, _EPS)
    if norm.kind == "zscore":
        if norm.use_mask:
            mask = _filled_nonzero_mask(image)
            values = image[mask]
            mean, std = values.mean(), values.std(correction=0)
            out = image.clone()
            out[mask] = (values - mean) / torch.clamp(std, min=_EPS)
            return out
        mean, std = image.mean(), image.std(correction=0)
        return (image - mean) / torch.clamp(std, min=_EPS)
    if norm.kind == "rescale_to_0_1":
        image = image - image.min()
        return image / torch.clamp(image.max(), min=_EPS)
    if norm.kind == "rgb_to_0_1":
        return image / 255.0
    return image  # "none"


def _filled_nonzero_mask(image: torch.Tensor) -> torch.Tensor:
    # rare path (z-score with use_mask_for_norm): scipy on the host, like nnU-Net
    from scipy.ndimage import binary_fill_holes

    mask = binary_fill_holes((image != 0).cpu().numpy())
    return torch.from_numpy(np.ascontiguousarray(mask)).to(image.device)


def prepare(volume: torch.Tensor, prep: Preprocessing) -> Prepared:
    """(Z, H, W) volume (any dtype, any device) -> Prepared with data (1, z, y, x) float32."""
    data = volume.permute(*prep.transpose_forward).to(torch.float32)
    transposed_shape = tuple(data.shape)
    if prep.crop_to_nonzero:
        bbox = nonzero_bbox(data)
        data = data[tuple(slice(a, b) for a, b in bbox)]
    else:
        bbox = tuple((0, int(s)) for s in data.shape)
    data = normalize(data.contiguous(), prep.normalization)
    return Prepared(data=data[None], bbox=bbox, transposed_shape=transposed_shape)


def restore(probability: torch.Tensor, prepared: Prepared, prep: Preprocessing, fill: float) -> torch.Tensor:
    """Cropped, transposed (z, y, x) probability -> the stored volume's (Z, H, W) layout."""
    full_box = tuple((0, s) for s in prepared.transposed_shape)
    if prepared.bbox != full_box:
        full = torch.full(prepared.transposed_shape, fill, dtype=probability.dtype, device=probability.device)
        full[tuple(slice(a, b) for a, b in prepared.bbox)] = probability
        probability = full
    backward = tuple(int(i) for i in np.argsort(prep.transpose_forward))
    return probability.permute(*backward)
