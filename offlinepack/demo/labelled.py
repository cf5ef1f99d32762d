"""A labelled synthetic set for the demo model: `train_images/<id>.tif` + `train_labels/<id>.tif`, made
deterministically (seeded) so the tuning loop (run --save-probabilities -> calibrate -> run
--from-probabilities -> score, and ablate) works from a fresh clone without the competition's data."""

from __future__ import annotations

from pathlib import Path

from offlinepack.demo.sample import write_lzw_tiff
from offlinepack.demo.synthetic import make_sheet_volume

LABELLED_SEED = 30_000


def write_labelled_set(folder: Path, *, count: int = 6, shape: tuple[int, int, int] = (64, 64, 64),
                       seed: int = LABELLED_SEED) -> Path:
    """Write (or keep, when present) `count` volumes and their labels; returns `folder`."""
    folder = Path(folder)
    images, labels = folder / "train_images", folder / "train_labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        ident = f"{2000001 + index}"
        if (images / f"{ident}.tif").exists() and (labels / f"{ident}.tif").exists():
            continue
        volume = make_sheet_volume(shape, seed=seed + index)
        write_lzw_tiff(volume.label, labels / f"{ident}.tif")
        write_lzw_tiff(volume.image, images / f"{ident}.tif")
    return folder
