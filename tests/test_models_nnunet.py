"""nnU-Net v2 model folders: written here in nnU-Net's own on-disk format, loaded without nnunetv2.

`write_nnunet_folder` is also used by test_inference_nnunet.py and scripts/bench_infer.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from offlinepack.models.errors import ModelLoadError
from offlinepack.models.loader import load_model
from offlinepack.models.nnunet_folder import load_nnunet_folder

PLAIN = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
IMPORTS = ["conv_op", "norm_op", "dropout_op", "nonlin"]
# the winner's m7 intensity statistics (DOMAIN.md): CT clip [0, 212], mean 87.54, std 47.74
CT_PROPS = {"max": 255.0, "mean": 87.54, "median": 84.0, "min": 0.0, "percentile_00_5": 0.0, "percentile_99_5": 212.0, "std": 47.74}


def arch_kwargs(features, blocks, residual: bool) -> dict:
    n = len(features)
    kwargs = {
        "n_stages": n,
        "features_per_stage": list(features),
        "conv_op": "torch.nn.modules.conv.Conv3d",
        "kernel_sizes": [[3, 3, 3]] * n,
        "strides": [[1, 1, 1]] + [[2, 2, 2]] * (n - 1),
        ("n_blocks_per_stage" if residual else "n_conv_per_stage"): list(blocks),
        "n_conv_per_stage_decoder": [1] * (n - 1),
        "conv_bias": True,
        "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
        "norm_op_kwargs": {"eps": 1e-05, "affine": True},
        "dropout_op": None,
        "dropout_op_kwargs": None,
        "nonlin": "torch.nn.LeakyReLU",
        "nonlin_kwargs": {"inplace": True},
    }
    return kwargs


def m7_architecture() -> dict:
    """ResEnc-L as in the winner's m7 plans: 6 stages, 32..320 features, blocks 1,3,4,6,6,6."""
    return {"network_class_name": RESENC, "arch_kwargs": arch_kwargs((32, 64, 128, 256, 320, 320), (1, 3, 4, 6, 6, 6), True),
            "_kw_requires_import": IMPORTS}


def write_nnunet_folder(
    root: Path,
    *,
    architecture: dict | None = None,
    patch_size=(32, 32, 32),
    folds=(0,),
    labels: dict | None = None,
    normalization: str = "CTNormalization",
    use_mask_for_norm: bool = False,
    transpose_forward=(0, 1, 2),
    seed: int = 0,
    checkpoint_name: str = "checkpoint_final.pth",
    logit_scale: float = 1.0,
) -> Path:
    """A trained-model folder exactly as nnU-Net v2 writes it, with random weights (one set per fold)."""
    from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet

    architecture = architecture or {"network_class_name": PLAIN, "arch_kwargs": arch_kwargs((4, 8, 16), (2, 2, 2), False),
                                    "_kw_requires_import": IMPORTS}
    labels = labels or {"background": 0, "surface": 1, "ignore": 2}
    values = [v for k, v in labels.items() if k != "ignore"]
    regions = any(isinstance(v, list) and len(v) > 1 for v in values)
    num_heads = len(values) - 1 if regions else len(set(values))  # regions: every entry but background
    transpose_backward = [int(i) for i in sorted(range(3), key=lambda i: transpose_forward[i])]
    plans = {
        "dataset_name": "Dataset001_Vesuvius",
        "plans_name": "nnUNetResEncUNetLPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [320, 320, 320],
        "image_reader_writer": "SimpleTiffIO",
        "transpose_forward": list(transpose_forward),
        "transpose_backward": transpose_backward,
        "configurations": {
            "3d_fullres": {
                "data_identifier": "nnUNetPlans_3d_fullres",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": 2,
                "patch_size": list(patch_size),
                "median_image_size_in_voxels": [320, 320, 320],
                "spacing": [1.0, 1.0, 1.0],
                "normalization_schemes": [normalization],
                "use_mask_for_norm": [use_mask_for_norm],
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0, "force_separate_z": None},
                "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0, "force_separate_z": None},
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0, "force_separate_z": None},
                "architecture": architecture,
                "batch_dice": False,
            }
        },
        "experiment_planner_used": "nnUNetPlannerResEncL",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": CT_PROPS},
    }
    dataset = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": 10, "file_ending": ".tif"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "plans.json").write_text(json.dumps(plans, indent=2))
    (root / "dataset.json").write_text(json.dumps(dataset, indent=2))
    cls = ResidualEncoderUNet if architecture["network_class_name"] == RESENC else PlainConvUNet
    kwargs = dict(architecture["arch_kwargs"])
    for key in architecture["_kw_requires_import"]:
        if kwargs[key] is not None:
            module, _, name = kwargs[key].rpartition(".")
            kwargs[key] = getattr(__import__(module, fromlist=[name]), name)
    for i, fold in enumerate(folds):
        torch.manual_seed(seed + i)
        net = cls(input_channels=1, num_classes=num_heads, deep_supervision=True, **kwargs)
        net.apply(net.initialize) if hasattr(net, "initialize") else None
        with torch.no_grad():  # balanced, spread logits so thresholded masks are not all one class
            for layer in net.decoder.seg_layers:
                layer.weight.sub_(layer.weight.mean(dim=1, keepdim=True)).mul_(logit_scale)
                layer.weight[1] = -layer.weight[0]
                layer.bias.zero_()
        (root / f"fold_{fold}").mkdir(exist_ok=True)
        torch.save(
            {
                "network_weights": net.state_dict(),
                "optimizer_state": {},
                "grad_scaler_state": None,
                "logging": {"epoch_end_timestamps": [1.0]},
                "_best_ema": 0.5,
                "current_epoch": 1000,
                "init_args": {"plans": plans, "configuration": "3d_fullres", "fold": fold, "dataset_json": dataset,
                              "device": torch.device("cpu")},
                "trainer_name": "nnUNetTrainer",
                "inference_allowed_mirroring_axes": (0, 1, 2),
            },
            root / f"fold_{fold}" / checkpoint_name,
        )
    return root


def test_loads_folds_networks_and_preprocessing(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m", folds=(0, 1), transpose_forward=(2, 0, 1))
    model = load_model(folder)
    assert model.kind == "nnunet" and len(model.networks) == 2
    assert model.patch_size == (32, 32, 32) and model.num_outputs == 2  # 'ignore' is not a head
    assert (model.activation, model.surface_channel) == ("softmax", 1)
    assert model.preprocessing.transpose_forward == (2, 0, 1) and model.preprocessing.crop_to_nonzero
    norm = model.preprocessing.normalization
    assert (norm.kind, norm.lower, norm.upper, norm.mean, norm.std) == ("ct", 0.0, 212.0, 87.54, 47.74)
    assert model.mirror_axes == (0, 1, 2)
    assert [p for p, _ in model.files][-1].endswith("fold_1/checkpoint_final.pth")
    assert model.details["folds"] == ["0", "1"]
    # the two folds have their own weights
    w0, w1 = (next(iter(n.state_dict().values())) for n in model.networks)
    assert not torch.equal(w0, w1)
    assert "dynamic_network_architectures" in sys.modules


def test_fold_selection_and_checkpoint_best(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m", folds=(0, 3), checkpoint_name="checkpoint_best.pth")
    assert load_nnunet_folder(folder, folds=[3]).details["folds"] == ["3"]
    with pytest.raises(ModelLoadError, match="missing folds") as info:
        load_nnunet_folder(folder, folds=[1, 2])
    assert any("fold 1" in p and "present: 0, 3" in p for p in info.value.problems)
    assert len(info.value.problems) == 2


def test_fold_without_checkpoint(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m", folds=(0,))
    (folder / "fold_1").mkdir()
    with pytest.raises(ModelLoadError) as info:
        load_nnunet_folder(folder)
    assert "fold 1: no checkpoint_final.pth or checkpoint_best.pth" in info.value.problems[0]


def test_plans_checkpoint_mismatch_names_key_and_shapes(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m")
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"]["arch_kwargs"]["features_per_stage"] = [6, 8, 16]
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelLoadError) as info:
        load_model(folder)
    msg = info.value.message
    assert "'encoder.stages.0.0.convs.0.conv.weight'" in msg
    assert "checkpoint shape (4, 1, 3, 3, 3)" in msg and "network shape (6, 1, 3, 3, 3)" in msg


def test_architecture_not_importable_names_class_and_package(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m")
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = "fancy_nets.architectures.FancyUNet"
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.raises(ModelLoadError) as info:
        load_model(folder)
    assert "architecture class fancy_nets.architectures.FancyUNet cannot be imported" in info.value.message
    assert info.value.hint == "install the package that provides it: pip install fancy-nets"


def test_unsupported_configurations_listed_together(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m")
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["patch_size"] = [64, 64]
    plans["configurations"]["3d_fullres"]["previous_stage"] = "3d_lowres"
    (folder / "plans.json").write_text(json.dumps(plans))
    dataset = json.loads((folder / "dataset.json").read_text())
    dataset["channel_names"] = {"0": "CT", "1": "CT"}
    (folder / "dataset.json").write_text(json.dumps(dataset))
    with pytest.raises(ModelLoadError, match="unsupported nnU-Net model") as info:
        load_model(folder)
    assert len(info.value.problems) == 3


def test_region_labels_use_sigmoid(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m", labels={"background": 0, "sheet": [1, 2], "core": 2})
    model = load_model(folder)
    assert (model.activation, model.num_outputs, model.surface_channel) == ("sigmoid", 2, 0)


def test_resampling_plans_warn(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m")
    plans = json.loads((folder / "plans.json").read_text())
    plans["original_median_spacing_after_transp"] = [2.0, 1.0, 1.0]
    (folder / "plans.json").write_text(json.dumps(plans))
    with pytest.warns(UserWarning, match="does not resample"):
        load_model(folder)


def test_missing_dataset_json_and_bad_checkpoint(tmp_path):
    folder = write_nnunet_folder(tmp_path / "m")
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot read checkpoint"):
        load_model(folder)
    (folder / "dataset.json").unlink()
    with pytest.raises(ModelLoadError, match="not a model offlinepack can read"):
        load_model(folder)
    with pytest.raises(ModelLoadError, match="dataset.json is missing"):
        load_nnunet_folder(folder)


def test_engine_runs_blank_and_tiny_volumes_through_an_nnunet_folder(tmp_path):
    import warnings

    import numpy as np

    from offlinepack.inference import InferenceSettings, build_engine

    folder = write_nnunet_folder(tmp_path / "m", patch_size=(16, 16, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = build_engine([folder], settings=InferenceSettings(device="cpu", mirror_axes=()))
    blank = engine.predict(np.zeros((10, 20, 18), dtype=np.uint8))  # nothing to crop to: whole volume
    assert blank.shape == (10, 20, 18) and np.isfinite(blank).all()
    dot = np.zeros((10, 20, 18), dtype=np.uint8)
    dot[5, 6, 7] = 200  # crop to one voxel, padded up to a patch, put back; outside the crop p = 0
    out = engine.predict(dot)
    assert out[0, 0, 0] == 0 and 0 <= out[5, 6, 7] <= 1
    assert engine.describe()["models"][0]["folds"] == ["0"]


def test_parent_folder_points_at_the_model_folders_inside(tmp_path):
    write_nnunet_folder(tmp_path / "Dataset001_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres")
    with pytest.raises(ModelLoadError, match="holds nnU-Net model folders") as info:
        load_model(tmp_path / "Dataset001_X")
    assert info.value.problems == (str(tmp_path / "Dataset001_X" / "nnUNetTrainer__nnUNetPlans__3d_fullres"),)
