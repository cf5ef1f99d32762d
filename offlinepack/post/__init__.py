"""Post-processing: surface probability (Z,H,W) -> binary mask uint8 {0,1}.

`postprocess(probability, PostConfig())` runs, in this order:

1. thresholding: `probability >= threshold`; or hysteresis when `hysteresis_low` is set
   (voxels >= hysteresis_low kept when their 26-connected region holds a voxel >= threshold);
2. small-component removal: 26-connected components under `min_component_voxels` voxels dropped
   (connected-components-3d when importable, scipy.ndimage otherwise: identical result);
3. hole filling: `fill_holes = "3d"` fills cavities fully enclosed in 3D (the result of scipy's
   `binary_fill_holes`, computed by labelling the background);
   `"2d"` fills each Z slice on its own (stronger: also closes loops a sheet draws in one slice);
   `"none"` skips it.
"""

from offlinepack.post.process import (
    FILL_MODES,
    PostConfig,
    PostprocessError,
    components_backend,
    fill_holes,
    postprocess,
    remove_small_components,
    threshold_mask,
)

__all__ = [
    "FILL_MODES",
    "PostConfig",
    "PostprocessError",
    "components_backend",
    "fill_holes",
    "postprocess",
    "remove_small_components",
    "threshold_mask",
]
