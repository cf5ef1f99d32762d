"""The work folder of masks that makes a run resumable.

Each finished volume leaves `<id>.tif` (the mask) and then `<id>.json` (its stats and the run key).
A later run reuses a mask only when both exist, the key matches (same model files, ensemble, post-
processing and inference settings) and the shape matches the source volume; `--overwrite` ignores them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offlinepack.submission import tiff_shape


@dataclass(frozen=True)
class VolumeResult:
    """One volume's outcome: source and mask facts plus seconds per stage (reused: from an earlier run)."""

    id: str
    shape: tuple[int, ...]
    input_dtype: str
    input_min: int
    input_max: int
    mask_dtype: str
    mask_min: int
    mask_max: int
    foreground: float
    seconds: Mapping[str, float]
    reader: str | None
    reused: bool = False

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
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], reused: bool) -> VolumeResult:
        source = data["input"]
        return cls(
            id=str(data["id"]),
            shape=tuple(int(s) for s in data["shape"]),
            input_dtype=source["dtype"],
            input_min=int(source["min"]),
            input_max=int(source["max"]),
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
        input_min=int(source["min"]),
        input_max=int(source["max"]),
        mask_dtype=str(mask.dtype),
        mask_min=int(mask.min()) if mask.size else 0,
        mask_max=int(mask.max()) if mask.size else 0,
        foreground=float(np.count_nonzero(mask)) / max(mask.size, 1),
        seconds={k: round(v, 4) for k, v in seconds.items()},
        reader=source.get("reader"),
    )


def run_key(model_hashes: Sequence[str], config_parts: Mapping[str, Any]) -> str:
    """Identifies what produced a mask: model file hashes plus every setting that changes the output."""
    blob = json.dumps({"models": list(model_hashes), **config_parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def mask_path(work_dir: Path, ident: str) -> Path:
    return work_dir / f"{ident}.tif"


def save_sidecar(work_dir: Path, result: VolumeResult, key: str) -> None:
    """Written after the mask's rename, so a sidecar always means a complete mask."""
    target = work_dir / f"{result.id}.json"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, **result.to_dict()}, indent=1))
    os.replace(tmp, target)


def reusable(work_dir: Path, ident: str, source: Path, key: str) -> VolumeResult | None:
    """The earlier result for `ident` when its mask is complete, made the same way, and shaped like the source."""
    sidecar = work_dir / f"{ident}.json"
    mask = mask_path(work_dir, ident)
    if not (sidecar.is_file() and mask.is_file()):
        return None
    try:
        data = json.loads(sidecar.read_text())
        if data.get("key") != key:
            return None
        result = VolumeResult.from_dict(data, reused=True)
        if tiff_shape(mask) != result.shape or tiff_shape(source) != result.shape:
            return None
    except Exception:  # a damaged sidecar or mask is simply recomputed
        return None
    return result
