"""The competition's leaderboard score, computed locally: exact (to 1e-9 of the official code) and fast.

`score_volume(pred, label)` scores one volume; `offlinepack score` scores a submission against label files.
Needs numpy, scipy, numba and scikit-image (the `score` extra; a Kaggle image has them) and uses cc3d when
installed. Never imports torch.
"""

from offlinepack.score.metric import (COMBINE_WEIGHTS, IGNORE_LABEL, VolumeScore, combine, foreground_masks,
                                      score_volume)
from offlinepack.score.surface_dice import surface_dice
from offlinepack.score.topo import DimCounts, TopoResult, tile_slices, topo_score
from offlinepack.score.voi import VoiResult, voi

__all__ = ["COMBINE_WEIGHTS", "IGNORE_LABEL", "DimCounts", "TopoResult", "VoiResult", "VolumeScore", "combine",
           "foreground_masks", "score_volume", "surface_dice", "tile_slices", "topo_score", "voi"]
