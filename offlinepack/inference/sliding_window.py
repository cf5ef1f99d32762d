"""Batched sliding-window prediction of one model on one device.

Same maths as nnU-Net's predictor (tile origins, Gaussian weights, padding, logits averaged over flips
and folds, then the activation), but the forward passes are batched: a batch holds (tile, flip)
pairs, so 8-flip TTA fills a batch of 8 from one tile. Sums are kept in fp32 on the device, or on the
host when the plan (or an out-of-memory error) says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from offlinepack.inference.settings import InferenceError
from offlinepack.inference.tiling import gaussian_importance_map, mirror_combinations, pad_amounts, tile_origins
from offlinepack.models.base import LoadedModel
from offlinepack.models.preprocessing import prepare, restore

log = logging.getLogger(__name__)
_AUTOCAST = {"fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class WindowPlan:
    """Per-call choices: batch size, where sums live, precision, TTA flips (network axes), and whether
    a last, partial batch is padded to full size (compiled networks: one graph, no recompilation)."""

    batch_size: int
    accumulate_on: str  # "device" | "host"
    precision: str  # "fp16" | "bf16" | "fp32"
    mirror_axes: tuple[int, ...]
    step_size: float
    pad_batch: bool = False


class OutOfMemory(Exception):
    """Raised by the sliding window when batch 1 still does not fit; the caller decides what to try next."""


def is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (isinstance(exc, RuntimeError) and "out of memory" in str(exc))


def autocast(device: torch.device, precision: str):
    if device.type == "cuda" and precision in _AUTOCAST:
        return torch.autocast("cuda", dtype=_AUTOCAST[precision])
    return contextlib.nullcontext()


def forward_batch(networks: Sequence[torch.nn.Module], x: torch.Tensor, precision: str) -> torch.Tensor:
    """Mean of the folds' logits, fp32."""
    with autocast(x.device, precision):
        out = networks[0](x).float()
        for net in networks[1:]:
            out += net(x).float()
    if len(networks) > 1:
        out /= len(networks)
    return out


def _slices(origin: Sequence[int], patch: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(o, o + p) for o, p in zip(origin, patch))


def sliding_window_logits(
    networks: Sequence[torch.nn.Module],
    data: torch.Tensor,
    patch: tuple[int, ...],
    num_outputs: int,
    plan: WindowPlan,
) -> tuple[torch.Tensor, int]:
    """Weighted-average logits (K, z, y, x) over tiles and flips for `data` (C, z, y, x), already at
    least one patch big. Returns (logits, batch size that worked). Halves the batch on OOM; raises
    OutOfMemory when batch 1 does not fit."""
    device = data.device
    acc_device = device if plan.accumulate_on == "device" else torch.device("cpu")
    flips = mirror_combinations(plan.mirror_axes)
    origins = tile_origins(tuple(data.shape[1:]), patch, plan.step_size)
    gauss = torch.from_numpy(gaussian_importance_map(patch).astype(np.float32)).to(acc_device)
    weights = torch.zeros(data.shape[1:], dtype=torch.float32, device=acc_device)
    for origin in origins:
        weights[_slices(origin, patch)] += gauss
    acc = torch.zeros((num_outputs, *data.shape[1:]), dtype=torch.float32, device=acc_device)
    items = [(origin, flip) for origin in origins for flip in flips]
    tile_weight = gauss.to(device) / len(flips)  # weighting happens where the outputs are
    batch = max(1, plan.batch_size)
    start = 0
    while start < len(items):
        chunk = items[start : start + batch]
        try:
            x = torch.stack([_flip(data[(slice(None), *_slices(o, patch))], f) for o, f in chunk])
            if plan.pad_batch and len(chunk) < batch:
                x = torch.cat([x, x.new_zeros((batch - len(chunk), *x.shape[1:]))])
            out = forward_batch(networks, x, plan.precision)[: len(chunk)]
        except Exception as exc:  # noqa: BLE001 - only OOM is handled, the rest re-raised
            if not is_oom(exc):
                raise
            x = out = None  # drop the failed batch before retrying  # noqa: F841
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch == 1:
                raise OutOfMemory() from None
            batch = max(1, batch // 2)
            log.warning("out of GPU memory: retrying with batch size %d", batch)
            continue
        _accumulate(acc, out, chunk, patch, tile_weight)
        start += len(chunk)
    acc /= weights
    return acc, batch


def _flip(t: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
    """Flip spatial axes of a (C, z, y, x) tensor; `axes` count from the first spatial axis."""
    return torch.flip(t, [a + 1 for a in axes]) if axes else t


def _accumulate(acc, out, chunk, patch, tile_weight) -> None:
    # items of one tile are neighbours: sum their un-flipped outputs, weight once, add once
    i = 0
    while i < len(chunk):
        origin = chunk[i][0]
        total = None
        while i < len(chunk) and chunk[i][0] == origin:
            y = _flip(out[i], chunk[i][1])
            total = y if total is None else total + y
            i += 1
        acc[(slice(None), *_slices(origin, patch))] += (total * tile_weight).to(acc.device)


def predict_model(
    model: LoadedModel,
    networks: Sequence[torch.nn.Module],
    volume: torch.Tensor,
    plan: WindowPlan,
) -> tuple[torch.Tensor, int]:
    """Surface probability (Z, H, W) fp32 for a (Z, H, W) volume already on the networks' device.
    Returns (probability, batch size that worked)."""
    with torch.inference_mode():
        prepared = prepare(volume, model.preprocessing)
        data = prepared.data
        pads = pad_amounts(tuple(data.shape[1:]), model.patch_size)
        if any(p != (0, 0) for p in pads):
            data = F.pad(data, [v for pair in reversed(pads) for v in pair], mode="constant", value=0.0)
        logits, batch = sliding_window_logits(networks, data, model.patch_size, model.num_outputs, plan)
        del data
        crop = tuple(slice(before, before + size) for (before, _), size in zip(pads, prepared.data.shape[1:]))
        logits = logits[(slice(None), *crop)]  # stays where it was summed: host sums never come back whole
        if model.activation == "softmax":
            probability = torch.softmax(logits, dim=0)[model.surface_channel]
        elif model.activation == "sigmoid":
            probability = torch.sigmoid(logits[model.surface_channel])
        else:
            probability = logits[model.surface_channel]
        del logits
        fill = 1.0 if (model.activation == "softmax" and model.surface_channel == 0) else 0.0
        return restore(probability.to(volume.device), prepared, model.preprocessing, fill), batch


def check_finite(probability: torch.Tensor, volume_id: str) -> None:
    if not bool(torch.isfinite(probability).all()):
        bad = int((~torch.isfinite(probability)).sum())
        raise InferenceError(
            f"volume {volume_id}: the model output has {bad} NaN/inf values",
            hint="try --precision fp32 (fp16 overflow) and check the model's weights and normalisation",
        )
