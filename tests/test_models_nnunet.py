"""nnU-Net v2 model folders (written by tests/support/nnunet.py in nnU-Net's own on-disk format), loaded without
nnunetv2."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from offlinepack.models.errors import ModelLoadError
from offlinepack.models.loader import load_model
from offlinepack.models.nnunet_folder import load_nnunet_folder
from tests.support.nnunet import write_nnunet_folder

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
