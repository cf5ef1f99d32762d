"""Built-in U-Net: build, save, load round trip and every load error."""

from __future__ import annotations

import json

import pytest
import torch

from offlinepack.models.builtin_unet import UNetConfig, build_unet, is_builtin_checkpoint, load_checkpoint, save_checkpoint
from offlinepack.models.errors import ModelLoadError


def _small() -> UNetConfig:
    return UNetConfig(features=(4, 8, 16), patch_size=(16, 16, 16))


def test_forward_shape_and_param_count():
    net = build_unet(UNetConfig())
    params = sum(p.numel() for p in net.parameters())
    assert 100_000 < params < 1_000_000
    out = build_unet(_small())(torch.zeros(2, 1, 16, 16, 16))
    assert out.shape == (2, 2, 16, 16, 16)


def test_round_trip_folder_and_file_forms(tmp_path):
    config = _small()
    torch.manual_seed(0)
    net = build_unet(config).eval()
    ckpt = save_checkpoint(net, config, tmp_path / "ckpt")
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "model.safetensors"]
    assert is_builtin_checkpoint(ckpt)
    loaded, loaded_config = load_checkpoint(ckpt)
    assert loaded_config == config
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    # NAME.safetensors + NAME.json form
    (ckpt / "model.safetensors").rename(tmp_path / "demo.safetensors")
    (ckpt / "config.json").rename(tmp_path / "demo.json")
    assert is_builtin_checkpoint(tmp_path / "demo.safetensors")
    loaded2, _ = load_checkpoint(tmp_path / "demo.safetensors")
    with torch.no_grad():
        assert torch.equal(loaded2(x), net(x))


def test_overwrite_replaces_only_when_complete(tmp_path):
    config = _small()
    save_checkpoint(build_unet(config), config, tmp_path / "c")
    save_checkpoint(build_unet(config), config, tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_invalid_config_lists_all_problems():
    with pytest.raises(ModelLoadError) as info:
        UNetConfig(features=(4, 8, 16), patch_size=(10, 16, 16), activation="relu", surface_channel=5)
    text = "\n".join(info.value.lines())
    assert "multiples of 4" in text and "'relu'" in text and "surface_channel 5" in text


def test_incomplete_checkpoint(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text(json.dumps(_small().to_dict()))
    with pytest.raises(ModelLoadError, match="incomplete") as info:
        load_checkpoint(tmp_path / "c")
    assert any("model.safetensors" in p for p in info.value.problems)
    assert not is_builtin_checkpoint(tmp_path / "c")


def test_config_and_weights_disagree_names_key_and_shapes(tmp_path):
    config = _small()
    ckpt = save_checkpoint(build_unet(config), config, tmp_path / "c")
    wider = UNetConfig(features=(6, 8, 16), patch_size=(16, 16, 16))
    (ckpt / "config.json").write_text(json.dumps(wider.to_dict()))
    with pytest.raises(ModelLoadError) as info:
        load_checkpoint(ckpt)
    assert "'encoder.0.0.weight'" in info.value.message
    assert "(4, 1, 3, 3, 3)" in info.value.message and "(6, 1, 3, 3, 3)" in info.value.message


def test_wrong_format_and_bad_json(tmp_path):
    ckpt = save_checkpoint(build_unet(_small()), _small(), tmp_path / "c")
    (ckpt / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_checkpoint(ckpt)
    (ckpt / "config.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ModelLoadError, match="not a built-in U-Net config"):
        load_checkpoint(ckpt)
    with pytest.raises(ModelLoadError, match="not a built-in U-Net checkpoint"):
        load_checkpoint(tmp_path / "weights.pt")
