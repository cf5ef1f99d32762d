"""The work folder of masks that makes a run resumable.

Each finished volume leaves `<id>.tif` (the mask) and then `<id>.json` (its stats, the run key and the
mask's sha256). A later run reuses a mask only when both exist, the key matches (same model files,
ensemble, post-processing and inference settings), the shape matches the source volume and the mask's
bytes still hash to the recorded sha256 (a damaged mask is recomputed, never zipped); `--overwrite`
ignores them. An empty mask written for a failed volume (`--on-error empty`) gets no sidecar, so the
next run computes that volume again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offlinepack.atomic import replacing
from offlinepack.hashing import sha256_file
from offlinepack.submission import tiff_shape, write_mask_tiff

Number = int | float


@dataclass(frozen=True)
class VolumeResult:
    """One volume's outcome: source and mask facts plus seconds per stage (reused: from an earlier run)."""

    id: str
    shape: tuple[int, ...]
    input_dtype: str
    input_min: Number  # float for float volumes (0.25 must not read as 0)
    input_max: Number
    mask_dtype: str
    mask_min: int
    mask_max: int
    foreground: float
    seconds: Mapping[str, float]
    reader: str | None
    reused: bool = False
    empty_on_error: bool = False  # the volume failed; an empty mask stands in for it (--on-error empty)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "shape": list(self.shape),
            "dtype": self.mask_dtype,
            "min": self.mask_min,
            "max": self.mask_max,
            "foreground_fraction": self.foreground,
            "input": {"dtype": self.input_dtype, "min": self.input_min, "max": self.input_max, "reader": self.reader},
            "seconds": dict(self.seconds),
            "reused": self.reused,
            "empty_on_error": self.empty_on_error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], reused: bool) -> VolumeResult:
        source = data["input"]
        return cls(
            id=str(data["id"]),
            shape=tuple(int(s) for s in data["shape"]),
            input_dtype=source["dtype"],
            input_min=_number(source["min"]),
            input_max=_number(source["max"]),
            mask_dtype=data["dtype"],
            mask_min=int(data["min"]),
            mask_max=int(data["max"]),
            foreground=float(data["foreground_fraction"]),
            seconds=dict(data["seconds"]),
            reader=source.get("reader"),
            reused=reused,
        )


def volume_result(ident: str, source: Mapping[str, Any], mask: np.ndarray, seconds: Mapping[str, float]) -> VolumeResult:
    """`source`: the input volume's shape, dtype, min, max and reader, taken when it was read."""
    return VolumeResult(
        id=ident,
        shape=tuple(int(s) for s in source["shape"]),
        input_dtype=str(source["dtype"]),
        input_min=_number(source["min"]),
        input_max=_number(source["max"]),
        mask_dtype=str(mask.dtype),
        mask_min=int(mask.min()) if mask.size else 0,
        mask_max=int(mask.max()) if mask.size else 0,
        foreground=float(np.count_nonzero(mask)) / max(mask.size, 1),
        seconds={k: round(v, 4) for k, v in seconds.items()},
        reader=source.get("reader"),
    )


def _number(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return value


def empty_mask_result(work_dir: Path, ident: str, shape: tuple[int, ...]) -> VolumeResult:
    """Write an all-zero mask of the source's shape for a failed volume (`--on-error empty`). Its sidecar is
    removed so no later run reuses it: the volume is computed again once it can be."""
    (work_dir / f"{ident}.json").unlink(missing_ok=True)
    mask = np.zeros(shape, dtype=np.uint8)
    write_mask_tiff(mask, mask_path(work_dir, ident))
    return VolumeResult(id=ident, shape=tuple(shape), input_dtype="unknown", input_min=0, input_max=0,
                        mask_dtype="uint8", mask_min=0, mask_max=0, foreground=0.0, seconds={}, reader=None,
                        empty_on_error=True)


def run_key(model_hashes: Sequence[str], config_parts: Mapping[str, Any]) -> str:
    """Identifies what produced a mask: model file hashes plus every setting that changes the output."""
    blob = json.dumps({"models": list(model_hashes), **config_parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def mask_path(work_dir: Path, ident: str) -> Path:
    return work_dir / f"{ident}.tif"


def save_sidecar(work_dir: Path, result: VolumeResult, key: str) -> None:
    """Written after the mask's rename, so a sidecar always means a complete mask; it records the mask's sha256
    so a mask damaged later (flipped bytes, a partial copy) is noticed before it is reused."""
    digest = sha256_file(mask_path(work_dir, result.id))
    with replacing(work_dir / f"{result.id}.json") as tmp:
        tmp.write_text(json.dumps({"key": key, "mask_sha256": digest, **result.to_dict()}, indent=1))


def reusable(work_dir: Path, ident: str, source: Path, key: str) -> VolumeResult | None:
    """The earlier result for `ident` when its mask is complete, made the same way, shaped like the source and
    byte for byte what was written (sha256 from the sidecar; a sidecar without one is not trusted)."""
    sidecar = work_dir / f"{ident}.json"
    mask = mask_path(work_dir, ident)
    if not (sidecar.is_file() and mask.is_file()):
        return None
    try:
        data = json.loads(sidecar.read_text())
        if data.get("key") != key:
            return None
        result = VolumeResult.from_dict(data, reused=True)
        if data.get("mask_sha256") != sha256_file(mask):
            return None
        if tiff_shape(mask) != result.shape or tiff_shape(source) != result.shape:
            return None
    except Exception:  # a damaged sidecar or mask is simply recomputed
        return None
    return result
