"""Wheelhouse: a lock + a target → verified wheels, built sdists, manifest, dataset metadata, bootstrap.py."""

from offlinepack.wheelhouse.assemble import BuildOptions, BuildResult, build_wheelhouse
from offlinepack.wheelhouse.cache import CACHE_ENV, HashMismatch, default_cache_dir
from offlinepack.wheelhouse.download import Progress
from offlinepack.wheelhouse.manifest import FORMAT, MANIFEST_NAME, SizeReport, WheelhouseFile

__all__ = [
    "CACHE_ENV",
    "FORMAT",
    "MANIFEST_NAME",
    "BuildOptions",
    "BuildResult",
    "HashMismatch",
    "Progress",
    "SizeReport",
    "WheelhouseFile",
    "build_wheelhouse",
    "default_cache_dir",
]
