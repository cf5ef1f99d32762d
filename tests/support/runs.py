"""More real files for `run`/`validate` tests (besides tests/support/cli.py): mask zips, ledgers, a tiny model."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from offlinepack.submission import write_mask_tiff

TINY = (32, 32, 32)  # with write_tiny_model, a whole run on CPU takes about a second


def mask_zip(path: Path, masks: dict[str, np.ndarray]) -> Path:
    """A submission zip of real mask TIFFs written the way `run` writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for ident, mask in masks.items():
            tif = write_mask_tiff(mask, path.parent / f".{ident}.mask.tif")
            archive.write(tif, f"{ident}.tif")
            tif.unlink()
    return path


def ledger_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def write_tiny_model(path: Path) -> Path:
    """A real built-in U-Net checkpoint (config.json + safetensors), small enough that loading it, the engine's
    CPU speed probe and a 32^3 volume take well under a second: for tests about what happens around inference."""
    import torch

    from offlinepack.models.builtin_unet import UNetConfig, build_unet, save_checkpoint

    torch.manual_seed(0)
    config = UNetConfig(features=(2, 4), patch_size=(16, 16, 16))
    return save_checkpoint(build_unet(config), config, path)
