"""What every loaded model looks like to the inference engine, whatever format it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from offlinepack.hashing import sha256_file
from offlinepack.models.errors import ModelLoadError

NORMALIZATION_KINDS = ("ct", "zscore", "affine", "none", "rescale_to_0_1", "rgb_to_0_1")
ACTIVATIONS = ("softmax", "sigmoid", "none")


@dataclass(frozen=True)
class Normalization:
    """Intensity normalisation of one input channel (nnU-Net's schemes plus a fixed affine one).

    - ct: clip to [lower, upper], then (x - mean) / std (nnU-Net CTNormalization, dataset statistics)
    - zscore: (x - mean(x)) / std(x) per volume; with use_mask only over the non-zero region, the
      rest left at 0 (nnU-Net ZScoreNormalization)
    - affine: (x - mean) / std with fixed numbers (built-in U-Net: mean 0, std 255)
    - none, rescale_to_0_1 (min-max per volume), rgb_to_0_1 (x / 255)
    """

    kind: str
    mean: float = 0.0
    std: float = 1.0
    lower: float | None = None
    upper: float | None = None
    use_mask: bool = False

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_KINDS:
            raise ModelLoadError(f"unknown normalisation {self.kind!r}", hint=f"use one of {', '.join(NORMALIZATION_KINDS)}")
        if self.kind == "ct" and (self.lower is None or self.upper is None):
            raise ModelLoadError("CT normalisation needs lower and upper clip bounds")

    @classmethod
    def from_dict(cls, data: dict, source: str) -> Normalization:
        allowed = {"kind", "mean", "std", "lower", "upper", "use_mask"}
        if not isinstance(data, dict) or "kind" not in data or set(data) - allowed:
            raise ModelLoadError(
                f"{source}: normalization must be an object with 'kind' and only {sorted(allowed)}, got {data!r}"
            )
        return cls(**data)


@dataclass(frozen=True)
class Preprocessing:
    """Steps between the stored (Z, H, W) volume and the network input, in nnU-Net's order:
    transpose, crop to the non-zero bounding box, normalise. Spacing is never resampled."""

    normalization: Normalization
    transpose_forward: tuple[int, int, int] = (0, 1, 2)
    crop_to_nonzero: bool = False


@dataclass(frozen=True)
class LoadedModel:
    """A ready network (or several folds whose logits are averaged, as nnU-Net does) and how to feed it.

    `mirror_axes` are the flips the model allows for TTA (None: any), in the network's axis order.
    `files` pairs every file read with its sha256, for the run record.
    """

    name: str
    kind: str
    source: Path
    networks: tuple[nn.Module, ...]
    patch_size: tuple[int, int, int]
    preprocessing: Preprocessing
    activation: str
    surface_channel: int
    num_outputs: int
    mirror_axes: tuple[int, ...] | None = None
    files: tuple[tuple[str, str], ...] = ()
    details: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ModelLoadError(f"{self.source}: activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not 0 <= self.surface_channel < self.num_outputs:
            raise ModelLoadError(
                f"{self.source}: surface channel {self.surface_channel} does not exist (the model has {self.num_outputs} outputs)"
            )
        if len(self.patch_size) != 3 or any(int(p) < 1 for p in self.patch_size):
            raise ModelLoadError(f"{self.source}: patch size must be 3 positive numbers, got {self.patch_size}")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": str(self.source),
            "folds": len(self.networks),
            "patch_size": list(self.patch_size),
            "activation": self.activation,
            "surface_channel": self.surface_channel,
            "normalization": self.preprocessing.normalization.kind,
            "files": [{"path": p, "sha256": h} for p, h in self.files],
            **self.details,
        }



def file_hashes(paths: list[Path]) -> tuple[tuple[str, str], ...]:
    return tuple((str(p), sha256_file(p)) for p in paths)
