"""`offlinepack model pack`: real nnU-Net folders with real checkpoints (optimizer state from a real SGD
step), packed, then reloaded by offlinepack and by nnunetv2's own predictor; the demo U-Net through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.demo import DEMO_CHECKPOINT
from offlinepack.hashing import sha256_file
from offlinepack.kernel_kit.model_pack import KEPT_CHECKPOINT_KEYS, PACK_MANIFEST, pack_models
from offlinepack.ledger import model_pack_facts
from offlinepack.models.loader import load_model
from tests.support.nnunet import write_nnunet_folder

runner = CliRunner()


def add_training_state(folder: Path, folds=(0, 1)) -> None:
    """What nnU-Net's trainer leaves besides the weights: SGD momentum after a real step, a training log,
    checkpoint_best.pth, validation outputs."""
    for fold in folds:
        path = folder / f"fold_{fold}" / "checkpoint_final.pth"
        checkpoint = torch.load(path, weights_only=False)
        unique = {t.data_ptr(): t for t in checkpoint["network_weights"].values()}  # the decoder shares the encoder's
        params = [torch.nn.Parameter(t.clone().float()) for t in unique.values() if t.is_floating_point()]
        optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.99, nesterov=True)
        sum(p.sum() for p in params).backward()
        optimizer.step()
        checkpoint["optimizer_state"] = optimizer.state_dict()
        checkpoint["logging"] = {"train_losses": [0.5] * 1000, "val_losses": [0.4] * 1000}
        torch.save(checkpoint, path)
        torch.save(checkpoint, folder / f"fold_{fold}" / "checkpoint_best.pth")
        (folder / f"fold_{fold}" / "validation").mkdir()
        (folder / f"fold_{fold}" / "validation" / "case_0.tif").write_bytes(b"\0" * 50_000)
        (folder / f"fold_{fold}" / "training_log.txt").write_text("epoch 999\n" * 100)


def _outputs(model, x):
    with torch.no_grad():
        return [net(x) for net in model.networks]


def test_nnunet_pack_keeps_what_inference_reads_and_both_loaders_load_it(tmp_path):
    source = write_nnunet_folder(tmp_path / "Dataset001__nnUNetTrainer__nnUNetPlans__3d_fullres", folds=(0, 1))
    add_training_state(source)
    result = pack_models([source], tmp_path / "pack", dataset_id="alice/vesuvius-model", folds=["1"])
    pack = tmp_path / "pack"
    assert sorted(str(p.relative_to(pack)) for p in pack.rglob("*") if p.is_file()) == [
        "dataset-metadata.json", "dataset.json", "fold_1/checkpoint_final.pth", PACK_MANIFEST, "plans.json"]
    packed = torch.load(pack / "fold_1" / "checkpoint_final.pth", weights_only=True)  # no pickled objects left
    assert set(packed) == set(KEPT_CHECKPOINT_KEYS)
    model = result.models[0]
    assert model.path == "." and model.folds == ("1",)
    assert model.size_after < model.size_before * 0.75  # the momentum buffer alone equals the weights
    assert model.source_folder_size > model.size_before  # checkpoint_best, fold 0, validation, logs not copied
    original = torch.load(source / "fold_1" / "checkpoint_final.pth", weights_only=False)
    torch.save(original["network_weights"], tmp_path / "weights-only.pth")
    packed_file = (pack / "fold_1" / "checkpoint_final.pth").stat().st_size
    assert packed_file < (tmp_path / "weights-only.pth").stat().st_size + 20_000  # shared encoder tensors kept shared
    manifest = json.loads((pack / PACK_MANIFEST).read_text())
    assert manifest["dataset_id"] == "alice/vesuvius-model"
    for entry in manifest["models"][0]["files"]:
        assert sha256_file(pack / entry["path"]) == entry["sha256"]
    assert json.loads((pack / "dataset-metadata.json").read_text())["id"] == "alice/vesuvius-model"

    x = torch.rand(1, 1, 32, 32, 32)
    ours_before = _outputs(load_model(source, ["1"]), x)
    ours_after = _outputs(load_model(pack, ["1"]), x)
    assert torch.equal(ours_before[0], ours_after[0])

    predictor_module = pytest.importorskip("nnunetv2.inference.predict_from_raw_data")
    predictor = predictor_module.nnUNetPredictor(device=torch.device("cpu"), use_gaussian=True, use_mirroring=False)
    predictor.initialize_from_trained_model_folder(str(pack), use_folds=(1,))
    predictor.network.load_state_dict(predictor.list_of_parameters[0])
    with torch.no_grad():
        theirs = predictor.network.eval()(x)
    assert torch.allclose(theirs, ours_after[0], atol=1e-5)
    assert predictor.allowed_mirroring_axes == (0, 1, 2)


def test_half_pack_halves_the_weights_and_stays_close(tmp_path):
    source = write_nnunet_folder(tmp_path / "model", folds=(0,))
    full = pack_models([source], tmp_path / "full", dataset_id="alice/model-full")
    half = pack_models([source], tmp_path / "half", dataset_id="alice/model-half", half=True)
    weights = torch.load(tmp_path / "half" / "fold_0" / "checkpoint_final.pth", weights_only=True)["network_weights"]
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float16}
    assert half.models[0].size_after < full.models[0].size_after * 0.7
    x = torch.rand(1, 1, 32, 32, 32)
    a, b = _outputs(load_model(tmp_path / "full"), x)[0], _outputs(load_model(tmp_path / "half"), x)[0]
    assert (a - b).abs().max() < 1e-2 * a.abs().max()
    predictor_module = pytest.importorskip("nnunetv2.inference.predict_from_raw_data")
    predictor = predictor_module.nnUNetPredictor(device=torch.device("cpu"), use_mirroring=False)
    predictor.initialize_from_trained_model_folder(str(tmp_path / "half"), use_folds=(0,))
    predictor.network.load_state_dict(predictor.list_of_parameters[0])  # float16 copied into float32


def test_cli_packs_demo_unet_and_several_models_into_subfolders(tmp_path):
    out = tmp_path / "demo-model"
    result = runner.invoke(app, ["model", "pack", str(DEMO_CHECKPOINT), "-o", str(out), "--dataset-id",
                                 "alice/offlinepack-demo-model", "--half"])
    assert result.exit_code == 0, result.output
    assert "kernel init --model alice/offlinepack-demo-model" in result.output
    assert "(float16)" in result.output
    assert load_model(out).num_outputs == 2
    facts = model_pack_facts([out])
    assert facts == [{"manifest": str(out / PACK_MANIFEST), "sha256": sha256_file(out / PACK_MANIFEST),
                      "dataset_id": "alice/offlinepack-demo-model", "half": True}]

    nnunet = write_nnunet_folder(tmp_path / "nnunet", folds=(0,))
    both = tmp_path / "both"
    result = runner.invoke(app, ["model", "pack", str(DEMO_CHECKPOINT), str(nnunet), "-o", str(both),
                                 "--dataset-id", "alice/two-models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [m["kernel_model"] for m in data["models"]] == ["alice/two-models:unet", "alice/two-models:nnunet"]
    assert model_pack_facts([both / "nnunet"])[0]["dataset_id"] == "alice/two-models"


def test_cli_errors(tmp_path):
    out = tmp_path / "pack"
    result = runner.invoke(app, ["model", "pack", str(tmp_path / "nope"), "-o", str(out), "--dataset-id", "alice/ab"])
    assert result.exit_code == 2
    assert f"error: model {tmp_path / 'nope'} does not exist" in result.output
    result = runner.invoke(app, ["model", "pack", str(DEMO_CHECKPOINT), "-o", str(out), "--dataset-id", "alice/ab"])
    assert result.exit_code == 2
    assert "dataset slug 'ab' has 2 characters; Kaggle needs 6 to 50" in result.output
    assert not out.exists()
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["model", "pack", str(DEMO_CHECKPOINT), "-o", str(tmp_path / "keep"), "--force",
                                 "--dataset-id", "alice/demo-model"])
    assert result.exit_code == 2 and "is not a model pack" in result.output
    assert (tmp_path / "keep" / "notes.txt").read_text() == "mine"
