"""offlinepack's engine against nnunetv2's own predictor on the same model folder and volume.

nnU-Net side: nnUNetPredictor.manual_initialization + DefaultPreprocessor.run_case_npy +
predict_logits_from_preprocessed_data + convert_predicted_logits_to_segmentation_with_correct_shape
(the path nnUNetv2_predict takes, minus file IO). Probabilities must agree within fp16 tolerance and
0.5-thresholded masks on >= 99.9 % of voxels.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from offlinepack.inference import InferenceSettings, build_engine
from tests.support.nnunet import RESENC, arch_kwargs, m7_architecture, write_nnunet_folder


def nnunet_probabilities(folder: Path, volume: np.ndarray, folds, device: str = "cpu", step: float = 0.5, mirror_axes=(0, 1, 2)) -> np.ndarray:
    """Class probabilities (K, Z, H, W) from nnunetv2 itself."""
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = json.loads((folder / "plans.json").read_text())
    dataset = json.loads((folder / "dataset.json").read_text())
    pm = PlansManager(plans)
    cm = pm.get_configuration("3d_fullres")
    lm = pm.get_label_manager(dataset)
    params = [torch.load(folder / f"fold_{f}" / "checkpoint_final.pth", map_location="cpu", weights_only=False)["network_weights"] for f in folds]
    net = get_network_from_plans(cm.network_arch_class_name, cm.network_arch_init_kwargs, cm.network_arch_init_kwargs_req_import,
                                 1, lm.num_segmentation_heads, allow_init=False, deep_supervision=False)
    predictor = nnUNetPredictor(tile_step_size=step, use_gaussian=True, use_mirroring=True, perform_everything_on_device=device != "cpu",
                                device=torch.device(device), verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(net, pm, cm, params, dataset, "nnUNetTrainer", tuple(mirror_axes))
    data, _, props = DefaultPreprocessor(verbose=False).run_case_npy(volume[None].astype(np.float32), None, {"spacing": [1.0, 1.0, 1.0]},
                                                                      pm, cm, dataset)
    logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
    _, probabilities = convert_predicted_logits_to_segmentation_with_correct_shape(logits, pm, cm, lm, props, return_probabilities=True)
    return probabilities


def sheet_volume(shape, seed=0, border=0) -> np.ndarray:
    """A uint8 volume with bright wavy sheets on noise; `border` voxels of zeros around it (cropped by nnU-Net)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    sheets = np.sin(z / 3.0 + np.sin(x / 7.0) + y / 11.0)
    vol = np.clip(100 + 80 * sheets + rng.normal(0, 25, shape), 1, 255).astype(np.uint8)
    if border:
        vol[:border] = 0
        vol[:, -border:] = 0
    return vol


def compare(ours: np.ndarray, reference: np.ndarray, margin: int) -> None:
    """nnU-Net sums tiles in fp16: along the volume's edges and corners, reached only by the far
    corners of tiles, its Gaussian weights are fp16 subnormals (or replaced zeros) and a few voxels
    differ by up to ~0.2. Away from the faces the two agree to ~1e-3. So: tight bound inside,
    loose percentile bound overall, and the 0.5-masks agree on >= 99.9 % of all voxels."""
    assert ours.shape == reference.shape and ours.dtype == np.float16
    diff = np.abs(ours.astype(np.float32) - reference)
    inner = diff[margin:-margin, margin:-margin, margin:-margin]
    assert inner.max() < 2e-3, f"max |difference| away from the faces {inner.max():.4g}"
    assert np.percentile(diff, 99) < 1e-2, f"99th percentile |difference| {np.percentile(diff, 99):.4g}"
    agree = np.mean((ours > 0.5) == (reference > 0.5))
    assert agree >= 0.999, f"masks agree on {agree:.5%}"
    assert 0.05 < np.mean(reference > 0.5) < 0.95, "test is weak: the reference mask is nearly all one class"


def _engine(folder, folds, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CPU warning
        return build_engine([folder], folds=folds, settings=InferenceSettings(device="cpu", **settings))


@pytest.mark.slow
def test_matches_nnunet_predictor_ct_crop_and_padding(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m", folds=(0,), logit_scale=5.0, patch_size=(16, 16, 16))
    engine = _engine(folder, [0])
    # zero borders exercise crop-to-nonzero; 14 < 16 exercises padding; odd sizes exercise step rounding
    volume = sheet_volume((30, 14, 31), border=3)
    reference = nnunet_probabilities(folder, volume, [0])
    compare(engine.predict(volume), reference[1], margin=4)


@pytest.mark.slow
def test_matches_nnunet_resenc_folds_transpose_zscore(tmp_path):
    arch = {"network_class_name": RESENC, "arch_kwargs": arch_kwargs((4, 8, 12), (1, 2, 2), True),
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]}
    folder = write_nnunet_folder(tmp_path / "m", architecture=arch, folds=(0, 1), normalization="ZScoreNormalization",
                                 use_mask_for_norm=True, transpose_forward=(2, 0, 1), logit_scale=5.0,
                                 patch_size=(16, 16, 16))
    engine = _engine(folder, None, batch_size=3, mirror_axes=(1,))  # 8-flip TTA is compared above; 2 flips keep this quick
    volume = sheet_volume((28, 34, 26), seed=1, border=2)
    reference = nnunet_probabilities(folder, volume, [0, 1], mirror_axes=(1,))
    compare(engine.predict(volume), reference[1], margin=4)


@pytest.mark.gpu
@pytest.mark.slow
def test_matches_nnunet_predictor_m7_sized_on_gpu(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m7", architecture=m7_architecture(), patch_size=(192, 192, 192),
                                 labels={"background": 0, "surface": 1, "unlabeled": 2}, logit_scale=5.0)
    engine = build_engine([folder], settings=InferenceSettings(device="cuda:0", precision="fp16"))
    volume = sheet_volume((320, 320, 320), seed=2)
    ours = engine.predict(volume)
    reference = nnunet_probabilities(folder, volume, [0], device="cuda")
    diff = np.abs(ours.astype(np.float32) - reference[1])
    assert np.mean((ours > 0.5) == (reference[1] > 0.5)) >= 0.999
    assert np.percentile(diff, 99.9) < 2e-2  # fp16 forward passes on both sides
