"""Post-processing: surface probability (Z,H,W) -> binary mask uint8 {0,1}.

`postprocess(probability, PostConfig())` runs, in this order:

1. thresholding: `probability >= threshold`; or hysteresis when `hysteresis_low` is set
   (voxels >= hysteresis_low kept when their 26-connected region holds a voxel >= threshold);
2. small-component removal: 26-connected components under `min_component_voxels` voxels dropped
   (connected-components-3d when importable, scipy.ndimage otherwise: identical result);
3. hole filling: `fill_holes = "3d"` fills cavities fully enclosed in 3D (the result of scipy's
   `binary_fill_holes`, computed by labelling the background);
   `"2d"` fills each Z slice on its own (stronger: also closes loops a sheet draws in one slice);
   `"none"` skips it; `max_hole_voxels` > 0 fills only cavities up to that size.

Optional steps (all off by default; costs per 320^3 volume in BENCHMARKS.md, scripts/bench_post.py):
- `threshold_rule`: each volume's threshold from its own histogram (post.rules);
- `min_component_mean_probability`: components whose mean probability is below it are dropped too;
- `closing_radius`: morphological closing of each connected sheet on its own, after the removal;
- `plug_holes`: 1-voxel holes through a sheet filled, last.
"""

from offlinepack.post.process import (
    FILL_MODES,
    PostConfig,
    PostprocessError,
    components_backend,
    fill_holes,
    postprocess,
    postprocess_checked,
    remove_small_components,
    threshold_mask,
    volume_threshold,
)
from offlinepack.post.rules import THRESHOLD_RULES, probability_histogram, rule_threshold
from offlinepack.post.topology import close_per_sheet, fill_small_cavities, plug_one_voxel_holes

__all__ = [
    "FILL_MODES",
    "PostConfig",
    "PostprocessError",
    "components_backend",
    "fill_holes",
    "THRESHOLD_RULES",
    "close_per_sheet",
    "fill_small_cavities",
    "plug_one_voxel_holes",
    "postprocess",
    "postprocess_checked",
    "probability_histogram",
    "remove_small_components",
    "rule_threshold",
    "threshold_mask",
    "volume_threshold",
]
