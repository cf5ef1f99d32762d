"""Facts a run record holds that are not the run's own results: model hashes, wheelhouse, environment.

Host facts are parameters (search roots, environment variables) so tests can be any machine; torch is
never imported here: its version comes from package metadata, CUDA and GPUs from the engine's describe().
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from offlinepack import kernel
from offlinepack.errors import OfflinepackError
from offlinepack.files import json_or_none
from offlinepack.hashing import sha256_file
from offlinepack.kaggle import DEFAULT_ROOT


def model_files(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Each model path's files with sha256 and size (a folder: every file under it, sorted)."""
    out: list[dict[str, Any]] = []
    for model in paths:
        model = Path(model)
        files = sorted(p for p in model.rglob("*") if p.is_file()) if model.is_dir() else [model]
        # a built-in checkpoint `x.safetensors` comes with its sidecar `x.json`
        if model.is_file():
            sidecar = model.with_suffix(".json")
            if sidecar != model and sidecar.is_file():
                files.append(sidecar)
        for path in files:
            if path.exists():
                out.append({"model": str(model), "path": str(path), "sha256": sha256_file(path), "size": path.stat().st_size})
    return out


MODEL_PACK_MANIFEST = "offlinepack-models.json"  # written by `offlinepack model pack` (kernel_kit/model_pack.py)
MODEL_PACK_FORMAT = "offlinepack-models"


def find_model_pack(model: Path, max_up: int = 3) -> tuple[Path, dict[str, Any] | None] | None:
    """The pack manifest a model lies in (the model's folder or up to `max_up` folders above it) and its
    content (None when damaged or not a pack manifest), or None when the model is not in a pack."""
    folder = Path(model) if Path(model).is_dir() else Path(model).parent
    for candidate in [folder, *folder.parents][: max_up + 1]:
        manifest = candidate / MODEL_PACK_MANIFEST
        if manifest.is_file():
            data = json_or_none(manifest)
            ok = isinstance(data, dict) and data.get("format") == MODEL_PACK_FORMAT
            return manifest, data if ok else None
    return None


def model_pack_facts(paths: Sequence[Path], max_up: int = 3) -> list[dict[str, Any]]:
    """The model packs the run's models came from: manifest path, sha256 and dataset id, once per pack.
    Models not packed add nothing."""
    found: dict[str, dict[str, Any]] = {}
    for model in paths:
        pack = find_model_pack(model, max_up)
        if pack is not None and pack[1] is not None and str(pack[0]) not in found:
            manifest, data = pack
            found[str(manifest)] = {"manifest": str(manifest), "sha256": sha256_file(manifest),
                                    "dataset_id": data.get("dataset_id"), "half": data.get("half")}
    return list(found.values())


def find_wheelhouse_manifest(wheel_dirs: Sequence[Path] = (), *, kaggle_root: Path = DEFAULT_ROOT,
                             environ: Mapping[str, str] = os.environ) -> Path | None:
    """The offlinepack.json of the wheelhouse bootstrap.py would install from (its own search), or None;
    also None when bootstrap.py itself is missing: a fact never fails the run it records."""
    try:
        return kernel.find_wheelhouse_manifest(wheel_dirs, kaggle_root=kaggle_root, environ=environ)
    except OfflinepackError:
        return None


def wheelhouse_fact(manifest: Path | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {"manifest": str(manifest), "sha256": sha256_file(manifest)}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment_fact(engine_info: Mapping[str, Any] | None = None, tiff_reader: str | None = None) -> dict[str, Any]:
    """python, platform, key package versions, CUDA/GPUs as the engine saw them, the TIFF reader used."""
    info = dict(engine_info or {})
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in ("offlinepack", "torch", "numpy", "tifffile", "pillow", "imagecodecs", "connected-components-3d", "scipy")},
        "cuda": info.get("cuda"),
        "devices": info.get("devices"),
        "gpus": info.get("device_names"),
        "precision": info.get("precision"),
        "tiff_reader": tiff_reader,
    }
