"""Tiling maths against nnU-Net's own functions, and the settings decisions (pure functions)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from offlinepack.inference.settings import (
    InferenceError,
    InferenceSettings,
    accumulator_bytes,
    cpu_batch_size,
    plan_memory,
    resolve_devices,
    resolve_precision,
    torch_warning,
)
from offlinepack.inference.tiling import (
    compute_steps_for_sliding_window,
    gaussian_importance_map,
    mirror_combinations,
    pad_amounts,
    tile_origins,
)

GiB = 1 << 30


@pytest.mark.parametrize(
    ("image", "tile", "step"),
    [((320, 320, 320), (192, 192, 192), 0.5), ((256, 256, 256), (192, 192, 192), 0.5), ((384, 384, 384), (128, 128, 128), 0.5),
     ((110, 64, 77), (64, 64, 64), 0.5), ((193, 200, 401), (192, 128, 160), 0.7), ((50, 50, 50), (16, 16, 16), 1.0),
     ((33, 17, 64), (16, 16, 16), 0.25)],
)
def test_steps_match_nnunet(image, tile, step):
    from nnunetv2.inference.sliding_window_prediction import compute_steps_for_sliding_window as nnunet_steps

    assert compute_steps_for_sliding_window(image, tile, step) == nnunet_steps(image, tile, step)


def test_steps_known_values_and_errors():
    assert compute_steps_for_sliding_window((320,) * 3, (192,) * 3, 0.5) == [[0, 64, 128]] * 3  # 27 tiles, 216 passes with 8 flips
    assert len(tile_origins((320,) * 3, (192,) * 3, 0.5)) == 27
    assert tile_origins((20, 16), (16, 16), 0.5)[:2] == [(0, 0), (4, 0)]
    with pytest.raises(ValueError, match="smaller than the tile"):
        compute_steps_for_sliding_window((10, 20, 20), (16, 16, 16), 0.5)
    with pytest.raises(ValueError, match="step size"):
        compute_steps_for_sliding_window((20, 20, 20), (16, 16, 16), 0.0)


@pytest.mark.parametrize("tile", [(16, 16, 16), (32, 24, 40), (192, 192, 192)])
def test_gaussian_matches_nnunet_exactly(tile):
    from nnunetv2.inference.sliding_window_prediction import compute_gaussian

    theirs = compute_gaussian(tile, sigma_scale=1.0 / 8, value_scaling_factor=10, dtype=torch.float16, device=torch.device("cpu"))
    ours = gaussian_importance_map(tile)
    assert ours.dtype == np.float16 and ours.shape == tile
    np.testing.assert_array_equal(ours, theirs.numpy())
    assert ours.min() > 0 and ours.max() == np.float16(10)
    with pytest.raises(ValueError):
        ours[0, 0, 0] = 1  # cached and read-only


@pytest.mark.parametrize(("shape", "min_shape"), [((10, 1, 20), (16, 16, 16)), ((17, 33, 5), (16, 16, 16)), ((192, 100, 191), (192, 192, 192))])
def test_padding_matches_pad_nd_image(shape, min_shape):
    from acvl_utils.cropping_and_padding.padding import pad_nd_image

    image = np.random.default_rng(0).random((1, *shape)).astype(np.float32)
    padded, slicer = pad_nd_image(torch.from_numpy(image), min_shape, "constant", {"value": 0}, True)  # as nnU-Net calls it
    padded = padded.numpy()
    pads = pad_amounts(shape, min_shape)
    ours = np.pad(image[0], pads)
    np.testing.assert_array_equal(ours, padded[0])
    assert [(s.start, s.stop) for s in slicer[1:]] == [(a, a + n) for (a, _), n in zip(pads, shape)]


def test_mirror_combinations_follow_nnunet_order():
    axes = [2, 3, 4]  # nnU-Net's batch-axis numbering
    theirs = [c for i in range(len(axes)) for c in itertools.combinations(axes, i + 1)]
    assert mirror_combinations((0, 1, 2)) == [()] + [tuple(a - 2 for a in c) for c in theirs]
    assert len(mirror_combinations((0, 1, 2))) == 8
    assert mirror_combinations(()) == [()]
    assert mirror_combinations((2, 0)) == [(), (0,), (2,), (0, 2)]


def test_settings_validation_lists_every_problem():
    with pytest.raises(InferenceError) as info:
        InferenceSettings(step_size=0, mirror_axes=(0, 3), batch_size=0, precision="int8", device="tpu")
    assert len(info.value.problems) == 5
    assert InferenceSettings(mirror_axes=[1]).mirror_axes == (1,)


def test_resolve_devices():
    assert resolve_devices("auto", 0) == ("cpu",)
    assert resolve_devices("auto", 2) == ("cuda:0", "cuda:1")
    assert resolve_devices("cuda:1", 2) == ("cuda:1",)
    with pytest.raises(InferenceError, match="no CUDA GPU is visible"):
        resolve_devices("cuda", 0)
    with pytest.raises(InferenceError, match="does not exist"):
        resolve_devices("cuda:2", 2)


def test_resolve_precision_never_bf16_on_t4():
    assert resolve_precision("auto", "cuda", (7, 5)) == ("fp16", None)
    assert resolve_precision("auto", "cuda", (9, 0)) == ("fp16", None)  # bf16 measured slower on H100
    precision, note = resolve_precision("bf16", "cuda", (7, 5))
    assert precision == "fp16" and "no native bf16" in note
    assert resolve_precision("bf16", "cuda", (8, 0)) == ("bf16", None)
    assert resolve_precision("fp16", "cpu", None)[0] == "fp32"
    assert resolve_precision("auto", "cpu", None) == ("fp32", None)
    precision, note = resolve_precision("bf16", "cuda", (9, 0), 90900)
    assert precision == "fp16" and "wrong bf16" in note
    assert resolve_precision("bf16", "cuda", (9, 0), 91100) == ("bf16", None)


def test_torch_29_warning():
    assert "disables cuDNN for 3D convolutions" in torch_warning("2.9.1+cu128")
    assert torch_warning("2.10.0") is None and torch_warning("2.13.0+cpu") is None


def test_memory_plan_under_a_15_gb_cap():
    accumulator = accumulator_bytes((320, 320, 320), (192, 192, 192), 3)
    assert accumulator == 320**3 * 4 * 9  # 1.2 GB
    # ~2.5 GB per sample (ResEnc-L, 192^3, fp16): an 80 GB card takes the full batch, 15 GB about 4
    assert plan_memory(78 * GiB, int(2.5 * GiB), accumulator).batch_size == 8
    small = plan_memory(15 * GiB, int(2.5 * GiB), accumulator)
    assert small.accumulate_on == "device" and 3 <= small.batch_size <= 5
    # no room next to the sums: sums go to the host and the batch uses what is left
    tight = plan_memory(3 * GiB, int(2.5 * GiB), 2 * GiB)
    assert tight.accumulate_on == "host" and tight.batch_size == 1
    assert plan_memory(1 * GiB, 4 * GiB, 0).batch_size == 1  # never 0: OOM handling decides
    assert cpu_batch_size((192, 192, 192)) == 1 and cpu_batch_size((32, 32, 32)) == 4
