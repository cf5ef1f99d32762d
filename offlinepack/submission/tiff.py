"""Mask TIFFs: write them so the scorer's Pillow reads them back identically; read them the scorer's way.

The scorer opens each `<id>.tif` with Pillow, walks the pages with `ImageSequence` and stacks them on
axis 0, so a mask is a multipage TIFF with one uint8 page per Z slice. Pages are deflate-compressed
(zlib from the standard library: no imagecodecs needed to write, and Pillow's libtiff decodes it).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from offlinepack.atomic import replacing
from offlinepack.errors import OfflinepackError
from offlinepack.native_stderr import captured_native_stderr

COMPRESSION = "zlib"  # TIFF compression 8 (Adobe deflate)


def write_mask_tiff(mask: np.ndarray, path: Path, compression: str | None = COMPRESSION) -> Path:
    """Write a (Z,H,W) uint8 mask as a Z-page TIFF: temp name first, then renamed into place."""
    if mask.ndim != 3:
        raise OfflinepackError(f"a mask must be 3D (Z,H,W), got shape {mask.shape} for {path.name}")
    if mask.dtype != np.uint8:
        raise OfflinepackError(f"a mask must be uint8, got {mask.dtype} for {path.name}")
    path = Path(path)
    with replacing(path) as tmp:  # OSError (a full disk) passes through: the run names the volume it failed
        _write_tiff(np.ascontiguousarray(mask), tmp, compression)
    return path


def _write_tiff(mask: np.ndarray, path: Path, compression: str | None) -> None:
    try:
        import tifffile
    except ImportError:  # Pillow alone writes the same pages, only slower
        from PIL import Image

        pages = [Image.fromarray(page) for page in mask]
        pages[0].save(
            path,
            format="TIFF",
            save_all=True,
            append_images=pages[1:],
            compression="tiff_deflate" if compression else None,
        )
        return
    # photometric minisblack + one page per Z: what Pillow's ImageSequence walks
    tifffile.imwrite(path, mask, photometric="minisblack", compression=compression, metadata=None)


def read_tiff_like_scorer(source: Path | bytes) -> np.ndarray:
    """Exactly the scorer's read: Image.open, ImageSequence pages, np.stack(axis=0)."""
    from PIL import Image, ImageSequence

    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    with captured_native_stderr([]), Image.open(handle) as image:  # libtiff's noise stays off the terminal
        pages = [np.array(page) for page in ImageSequence.Iterator(image)]
    return np.stack(pages, axis=0)


def tiff_shape(path: Path) -> tuple[int, ...]:
    """A TIFF volume's shape from its headers, without decoding pixels (LZW needs no imagecodecs here)."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            pages = tif.pages
            first = pages[0].shape
            count = len(pages)
            if count == 1:
                return tuple(int(s) for s in first)
            return (count, *(int(s) for s in first))
    except ImportError:
        pass
    from PIL import Image

    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        width, height = image.size
        return (height, width) if frames == 1 else (frames, height, width)
