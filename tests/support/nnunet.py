"""nnU-Net v2 trained-model folders written in nnU-Net's own on-disk format (random weights), for the model,
inference and model-pack tests and the benchmarks (scripts/bench_infer.py, scripts/bench_model_pack.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

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
