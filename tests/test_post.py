"""Post-processing: thresholds, hysteresis, small components (cc3d and scipy agree), hole filling."""

from __future__ import annotations

import numpy as np
import pytest

from offlinepack.errors import OfflinepackError
from offlinepack.post import (
    PostConfig,
    PostprocessError,
    components_backend,
    fill_holes,
    postprocess,
    remove_small_components,
    threshold_mask,
)

BACKENDS = ["scipy", pytest.param("cc3d", marks=pytest.mark.skipif(components_backend() != "cc3d", reason="cc3d not installed"))]


def _blobs() -> np.ndarray:
    """A 10x10x10 cube (1000 voxels), a 3x3x3 cube (27), a single voxel, and two diagonal voxels."""
    mask = np.zeros((24, 24, 24), dtype=bool)
    mask[1:11, 1:11, 1:11] = True
    mask[15:18, 15:18, 15:18] = True
    mask[20, 2, 2] = True
    mask[21, 21, 21] = mask[22, 22, 22] = True  # 26-connected only through a corner
    return mask


@pytest.mark.parametrize("backend", BACKENDS)
def test_remove_small_components_counts_26_connectivity(backend: str) -> None:
    mask = _blobs()
    kept = remove_small_components(mask, 2, backend)
    assert kept.sum() == 1000 + 27 + 2  # the diagonal pair is one component of 2
    kept = remove_small_components(mask, 28, backend)
    assert kept.sum() == 1000 and kept[1:11, 1:11, 1:11].all()


def test_cc3d_and_scipy_give_the_same_mask_on_random_data() -> None:
    if components_backend() != "cc3d":
        pytest.skip("cc3d not installed")
    rng = np.random.default_rng(3)
    mask = rng.random((40, 40, 40)) > 0.75
    for min_voxels in (2, 5, 50):
        np.testing.assert_array_equal(
            remove_small_components(mask, min_voxels, "cc3d"), remove_small_components(mask, min_voxels, "scipy")
        )
    prob = rng.random((40, 40, 40)).astype(np.float32)
    np.testing.assert_array_equal(threshold_mask(prob, 0.9, 0.6, "cc3d"), threshold_mask(prob, 0.9, 0.6, "scipy"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_hysteresis_keeps_weak_regions_touching_a_strong_voxel(backend: str) -> None:
    prob = np.zeros((8, 8, 8), dtype=np.float32)
    prob[1, 1, 1:6] = 0.4  # weak line ...
    prob[1, 1, 3] = 0.9  # ... with one strong voxel
    prob[5, 5, 1:6] = 0.4  # weak line alone
    plain = threshold_mask(prob, 0.5)
    assert plain.sum() == 1
    hyst = threshold_mask(prob, 0.5, 0.3, backend)
    assert hyst[1, 1, 1:6].all() and not hyst[5, 5].any() and hyst.sum() == 5


def test_fill_holes_3d_fills_enclosed_cavity_only_and_2d_fills_per_slice() -> None:
    shell = np.zeros((9, 9, 9), dtype=bool)
    shell[2:7, 2:7, 2:7] = True
    shell[3:6, 3:6, 3:6] = False  # closed cavity
    assert fill_holes(shell, "3d")[4, 4, 4]
    tube = np.zeros((9, 9, 9), dtype=bool)
    tube[:, 2:7, 2:7] = True
    tube[:, 3:6, 3:6] = False  # open at both ends in Z: no 3D hole, but a hole in every slice
    np.testing.assert_array_equal(fill_holes(tube, "3d"), tube)
    assert fill_holes(tube, "2d")[:, 4, 4].all()
    assert fill_holes(tube, "none") is tube


def test_postprocess_returns_uint8_zero_one_of_input_shape() -> None:
    rng = np.random.default_rng(0)
    prob = (rng.random((20, 24, 28)) * 0.3).astype(np.float16)
    prob[2:12, 2:12, 2:12] = 0.8
    out = postprocess(prob, PostConfig(threshold=0.5, min_component_voxels=100))
    assert out.dtype == np.uint8 and out.shape == prob.shape
    assert set(np.unique(out).tolist()) == {0, 1} and out.sum() == 1000


def test_postprocess_rejects_nan_and_wrong_rank() -> None:
    prob = np.zeros((4, 4, 4), dtype=np.float16)
    prob[1, 1, 1] = np.nan
    with pytest.raises(PostprocessError, match="non-finite"):
        postprocess(prob)
    with pytest.raises(PostprocessError, match="3D"):
        postprocess(np.zeros((4, 4), dtype=np.float32))


def test_config_validation_and_unknown_keys_named() -> None:
    with pytest.raises(OfflinepackError) as info:
        PostConfig(threshold=1.5, fill_holes="sideways", min_component_voxels=-1)
    text = "\n".join(info.value.lines())
    assert "post.threshold" in text and "post.fill_holes" in text and "post.min_component_voxels" in text
    with pytest.raises(OfflinepackError, match="unknown key.*treshold"):
        PostConfig.from_mapping({"treshold": 0.3})
    assert PostConfig.from_mapping({"threshold": 0.3, "hysteresis_low": 0.2}).hysteresis_low == 0.2


@pytest.mark.parametrize("backend", BACKENDS)
def test_fill_holes_3d_equals_scipy_binary_fill_holes(backend: str) -> None:
    from scipy import ndimage

    rng = np.random.default_rng(7)
    for density in (0.3, 0.55, 0.7):
        mask = rng.random((30, 34, 38)) < density
        np.testing.assert_array_equal(fill_holes(mask, "3d", backend), ndimage.binary_fill_holes(mask))
    assert not fill_holes(np.zeros((4, 4, 4), bool), "3d", backend).any()
    assert fill_holes(np.ones((4, 4, 4), bool), "3d", backend).all()
