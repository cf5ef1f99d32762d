"""Tuning on labelled volumes: `calibrate` (post-processing settings, cross-validated) and `ablate` (what
each ensemble member adds), on a local process pool or a Dask cluster."""

from offlinepack.calibrate.labelled import LabelledSet, pair_with_labels
from offlinepack.calibrate.search import CalibrationProgress, CalibrationResult, calibrate, write_calibrated_toml
from offlinepack.calibrate.stats import Interval
from offlinepack.calibrate.tasks import DaskPool, LocalPool, open_pool

__all__ = [
    "CalibrationProgress",
    "CalibrationResult",
    "DaskPool",
    "Interval",
    "LabelledSet",
    "LocalPool",
    "calibrate",
    "open_pool",
    "pair_with_labels",
    "write_calibrated_toml",
]
