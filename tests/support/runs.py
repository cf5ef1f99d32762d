"""Real inputs and a CLI driver for `run`/`validate` tests: LZW competition folders, mask zips, ledgers."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.demo.sample import write_lzw_tiff
from offlinepack.demo.synthetic import make_sheet_volume
from offlinepack.submission import write_mask_tiff

TINY = (32, 32, 32)  # small enough that the bundled demo model runs in about a second on CPU


def competition(folder: Path, ids: dict[str, tuple[int, int, int]], csv_ids: list[str] | None = None) -> Path:
    """`folder/test_images/<id>.tif` (uint8, LZW, as the competition ships them) and `folder/test.csv`."""
    images = folder / "test_images"
    images.mkdir(parents=True)
    for seed, (ident, shape) in enumerate(ids.items()):
        write_lzw_tiff(make_sheet_volume(shape, seed=100 + seed).image, images / f"{ident}.tif")
    rows = csv_ids if csv_ids is not None else list(ids)
    (folder / "test.csv").write_text("id,scroll_id\n" + "".join(f"{i},1\n" for i in rows))
    return folder


def mask_zip(path: Path, masks: dict[str, np.ndarray]) -> Path:
    """A submission zip of real mask TIFFs written the way `run` writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for ident, mask in masks.items():
            tif = write_mask_tiff(mask, path.parent / f".{ident}.mask.tif")
            archive.write(tif, f"{ident}.tif")
            tif.unlink()
    return path


def invoke(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(app, args, env=env, catch_exceptions=False)


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
