"""Write the demo input: a competition-like folder with test.csv and one LZW multipage TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from offlinepack.atomic import replacing, resolve_output
from offlinepack.demo.synthetic import make_sheet_volume

DEMO_ID = "1000001"
DEMO_SHAPE = (128, 128, 128)
DEMO_SEED = 20_000


def write_lzw_tiff(volume: np.ndarray, path: Path) -> Path:
    """A multipage uint8 TIFF, LZW like the competition's; Pillow writes LZW without imagecodecs."""
    from PIL import Image

    path = resolve_output(path)  # through a link; never onto a device
    pages = [Image.fromarray(np.ascontiguousarray(page)) for page in volume]
    with replacing(path) as tmp:
        pages[0].save(tmp, format="TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return path


def write_demo_input(
    folder: Path,
    *,
    ids: tuple[str, ...] = (DEMO_ID,),
    shape: tuple[int, int, int] = DEMO_SHAPE,
    seed: int = DEMO_SEED,
) -> Path:
    """`folder/test_images/<id>.tif` + `folder/test.csv` (id,scroll_id); existing identical files are kept."""
    folder = Path(folder)
    images = folder / "test_images"
    images.mkdir(parents=True, exist_ok=True)
    for offset, ident in enumerate(ids):
        target = images / f"{ident}.tif"
        if not target.exists():
            write_lzw_tiff(make_sheet_volume(shape, seed=seed + offset).image, target)
    csv = "id,scroll_id\n" + "".join(f"{ident},demo\n" for ident in ids)
    if not (folder / "test.csv").exists() or (folder / "test.csv").read_text() != csv:
        (folder / "test.csv").write_text(csv)
    return folder
