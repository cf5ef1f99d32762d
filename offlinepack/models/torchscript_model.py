"""TorchScript (`.pt`/`.ts`) or torch.export (`.pt2`) networks with a JSON sidecar.

The sidecar sits next to the model with the same stem (`model.pt` -> `model.json`):

    {"format": "offlinepack-torchscript", "version": 1,
     "patch_size": [128, 128, 128],
     "normalization": {"kind": "ct", "lower": 0, "upper": 212, "mean": 87.54, "std": 47.74},
     "activation": "softmax",          # or "sigmoid", or "none" when the network outputs probabilities
     "surface_channel": 1,
     "mirror_axes": [0, 1, 2]}         # optional: flips allowed for TTA (default all three)

The network takes (N, 1, z, y, x) float32 and returns (N, C, z, y, x). `normalization` is a
`Normalization` (kinds: ct, zscore, affine, none, rescale_to_0_1, rgb_to_0_1). A torch.export
program must accept the batch sizes used (export it with a dynamic batch dimension, or run
with batch_size 1).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from offlinepack.models.base import LoadedModel, Normalization, Preprocessing, file_hashes
from offlinepack.models.errors import ModelLoadError, read_json_object

FORMAT = "offlinepack-torchscript"
SUFFIXES = (".pt", ".ts", ".pt2", ".torchscript")
_KEYS = {"format", "version", "patch_size", "normalization", "activation", "surface_channel", "mirror_axes", "num_outputs"}


def sidecar_path(path: Path) -> Path:
    return path.with_suffix(".json")


def is_torchscript_model(path: Path) -> bool:
    return path.is_file() and path.suffix in SUFFIXES and sidecar_path(path).is_file()


def _read_sidecar(path: Path) -> dict:
    side = sidecar_path(path)
    if not side.is_file():
        raise ModelLoadError(f"{path}: no sidecar {side.name}", hint=f"write {side} describing patch_size, normalization, activation, surface_channel")
    data = read_json_object(side)
    if data.get("format") != FORMAT:
        raise ModelLoadError(f"{side}: not an offlinepack sidecar (\"format\" must be {FORMAT!r})")
    problems = [f"unknown key {k!r}" for k in sorted(set(data) - _KEYS)]
    problems += [f"missing key {k!r}" for k in ("patch_size", "normalization", "activation", "surface_channel") if k not in data]
    if problems:
        raise ModelLoadError(f"{side}: invalid sidecar", problems=problems)
    return data


def _load_network(path: Path) -> torch.nn.Module:
    try:
        if path.suffix == ".pt2":
            return torch.export.load(str(path)).module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 deprecates TorchScript; it still loads
            return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ModelLoadError(f"{path}: cannot load network ({type(exc).__name__}: {exc})") from exc


def load_torchscript_model(path: Path) -> LoadedModel:
    path = Path(path)
    side = _read_sidecar(path)
    network = _load_network(path)
    patch = tuple(int(p) for p in side["patch_size"])
    if len(patch) != 3:
        raise ModelLoadError(f"{sidecar_path(path)}: patch_size must have 3 entries, got {side['patch_size']}")
    num_outputs = side.get("num_outputs")
    if num_outputs is None:
        # one probe pass at a small size tells the channel count; keeps the sidecar short
        with torch.no_grad():
            probe = network(torch.zeros(1, 1, *patch))
        num_outputs = int(probe.shape[1])
    mirror = side.get("mirror_axes", [0, 1, 2])
    return LoadedModel(
        name=path.stem,
        kind="torchscript" if path.suffix != ".pt2" else "torch.export",
        source=path,
        networks=(network,),
        patch_size=patch,  # type: ignore[arg-type]
        preprocessing=Preprocessing(normalization=Normalization.from_dict(side["normalization"], str(sidecar_path(path)))),
        activation=side["activation"],
        surface_channel=int(side["surface_channel"]),
        num_outputs=int(num_outputs),
        mirror_axes=tuple(int(a) for a in mirror),
        files=file_hashes([path, sidecar_path(path)]),
    )
