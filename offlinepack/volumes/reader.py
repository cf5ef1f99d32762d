"""read_volume: a multipage TIFF as a (Z, H, W) array, through the best reader this environment has."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from offlinepack.errors import OfflinepackError
from offlinepack.native_stderr import captured_native_stderr

READERS = ("tifffile+imagecodecs", "tifffile", "pillow")
# TIFF compression codes tifffile decodes with the standard library alone (none, deflate, Adobe deflate)
_TIFFFILE_NATIVE = {1, 8, 32946}
_LZW = 5


class VolumeReadError(OfflinepackError):
    """A volume that cannot be read, or is not a 3D stack; the message names the file."""


@dataclass(frozen=True, slots=True)
class VolumeData:
    array: np.ndarray  # (Z, H, W) as stored
    reader: str  # one of READERS


@dataclass(frozen=True, slots=True)
class TiffReaders:
    tifffile: bool
    imagecodecs: bool
    pillow: bool
    lzw: str | None  # the reader that will decode LZW, or None
    versions: tuple[tuple[str, str], ...] = ()  # (distribution, version) of those that import

    def to_dict(self) -> dict[str, object]:
        return {"tifffile": self.tifffile, "imagecodecs": self.imagecodecs, "pillow": self.pillow, "lzw": self.lzw,
                "versions": dict(self.versions)}


def _module(name: str) -> ModuleType | None:
    """The module, or None when it is absent or broken (an imagecodecs built for another numpy raises on import)."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - any import failure means "not usable"; the doctor reports which
        return None


def tiff_readers() -> TiffReaders:
    have = {name: _module(name) is not None for name in ("tifffile", "imagecodecs", "PIL.Image")}
    lzw = ("tifffile+imagecodecs" if have["tifffile"] and have["imagecodecs"]
           else "pillow" if have["PIL.Image"] else None)
    versions = []
    for dist, ok in (("tifffile", have["tifffile"]), ("imagecodecs", have["imagecodecs"]), ("pillow", have["PIL.Image"])):
        if ok:
            try:
                versions.append((dist, importlib.metadata.version(dist)))
            except importlib.metadata.PackageNotFoundError:
                versions.append((dist, "?"))
    return TiffReaders(have["tifffile"], have["imagecodecs"], have["PIL.Image"], lzw, tuple(versions))


def _check_shape(array: np.ndarray, path: Path, reader: str) -> VolumeData:
    if array.ndim == 2:
        raise VolumeReadError(f"{path}: one 2D page {array.shape}; expected a multipage 3D volume (Z, H, W)")
    if array.ndim != 3:
        raise VolumeReadError(f"{path}: {array.ndim}D array {array.shape}; expected a 3D volume (Z, H, W) "
                              "of single-channel pages")
    return VolumeData(array, reader)


class _LogTrap(logging.Handler):
    """tifffile logs (not raises) a broken page chain and returns fewer pages: treat that as a read failure."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _read_tifffile(tifffile: ModuleType, path: Path, native_only: bool) -> np.ndarray:
    logger = logging.getLogger("tifffile")
    trap = _LogTrap()
    logger.addHandler(trap)
    try:
        with tifffile.TiffFile(path) as tif:
            pages = list(tif.pages)
            found = {int(page.compression) for page in pages}
            if native_only and not found <= _TIFFFILE_NATIVE:
                raise _NeedsCodecs(f"tifffile: needs imagecodecs for compression {sorted(found)}"
                                   + (" (LZW)" if _LZW in found else ""))
            size = path.stat().st_size
            for page in pages:
                ends = [o + n for o, n in zip(page.dataoffsets, page.databytecounts)]
                if ends and max(ends) > size:
                    raise OSError(f"page {page.index} runs past the end of the file (truncated)")
            array = tif.asarray()
    finally:
        logger.removeHandler(trap)
    if trap.messages:
        raise OSError("; ".join(trap.messages))
    return array


class _NeedsCodecs(Exception):
    pass


def _read_pillow(path: Path) -> np.ndarray:
    from PIL import Image, ImageSequence

    libtiff: list[str] = []
    try:
        with captured_native_stderr(libtiff), Image.open(path) as image:
            pages = [np.array(page) for page in ImageSequence.Iterator(image)]
    except Exception as error:
        if libtiff:  # libtiff's own words, kept in the reason instead of on the terminal
            raise OSError(f"{error} (libtiff: {'; '.join(dict.fromkeys(libtiff))})") from error
        raise
    if len(pages) == 1:
        return pages[0]
    shapes = {p.shape for p in pages}
    if len(shapes) != 1:
        raise VolumeReadError(f"{path}: pages have different shapes {sorted(shapes)}")
    return np.stack(pages, axis=0)


def read_volume(path: Path, *, prefer: str | None = None) -> VolumeData:
    """Read `path` with tifffile+imagecodecs, else tifffile (uncompressed/deflate only), else Pillow.

    `prefer` forces one reader (tests, benchmarks); it raises VolumeReadError when that one cannot do it.
    """
    path = Path(path)
    if not path.is_file():
        raise VolumeReadError(f"{path}: no such file")
    if prefer is not None and prefer not in READERS:
        raise ValueError(f"prefer must be one of {READERS}, not {prefer!r}")
    tifffile = _module("tifffile")
    codecs = tifffile is not None and _module("imagecodecs") is not None
    order = [prefer] if prefer else list(READERS)
    tried: list[str] = []
    for reader in order:
        try:
            if reader == "tifffile+imagecodecs" and codecs:
                return _check_shape(_read_tifffile(tifffile, path, native_only=False), path, reader)
            if reader == "tifffile" and tifffile is not None:
                return _check_shape(_read_tifffile(tifffile, path, native_only=True), path, reader)
            if reader == "pillow" and _module("PIL.Image") is not None:
                return _check_shape(_read_pillow(path), path, reader)
            tried.append(f"{reader}: not installed")
        except VolumeReadError:
            raise
        except _NeedsCodecs as why:
            tried.append(str(why))
        except Exception as error:  # noqa: BLE001 - truncated/corrupt files raise many types; try the next reader
            tried.append(f"{reader}: {type(error).__name__}: {error}")
    raise VolumeReadError(f"{path}: cannot read this TIFF", problems=tried,
                          hint="check the file is a complete multipage TIFF; `offlinepack doctor` lists the readers")
