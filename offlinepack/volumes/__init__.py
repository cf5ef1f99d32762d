"""Competition inputs and TIFF volumes: find them in either Kaggle layout, read them with whatever codec is there.

Reading degrades instead of failing: tifffile + imagecodecs, else tifffile alone for uncompressed and
deflate files, else Pillow page by page (Pillow decodes LZW by itself, and it is what the scorer uses).
Every path returns the same (Z, H, W) array.
"""

from offlinepack.volumes.inputs import InputSet, VolumeRef, find_inputs
from offlinepack.volumes.reader import TiffReaders, VolumeData, VolumeReadError, read_volume, tiff_readers

__all__ = ["InputSet", "TiffReaders", "VolumeData", "VolumeReadError", "VolumeRef", "find_inputs", "read_volume",
           "tiff_readers"]
