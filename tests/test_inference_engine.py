"""The engine on CPU with small real networks: exact arrays, TTA, ensembles, devices, every error."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from offlinepack.inference import Engine, InferenceError, InferenceSettings, ModelLoadError, build_engine
from offlinepack.inference.tiling import gaussian_importance_map, tile_origins
from offlinepack.models.base import LoadedModel, Normalization, Preprocessing
from offlinepack.models.builtin_unet import UNetConfig, build_unet, save_checkpoint

PATCH = (8, 8, 8)


class Identity(nn.Module):
    def forward(self, x):
        return x.clone()


class Ramp(nn.Module):
    """Output = input + the voxel's z index inside the patch: not flip-equivariant, so TTA shows."""

    def forward(self, x):
        ramp = torch.arange(x.shape[2], dtype=x.dtype, device=x.device).view(1, 1, -1, 1, 1)
        return x + ramp


class Constant(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


class Broken(nn.Module):
    """Real-tensor stand-in for a GPU that runs out of memory above a batch size, or emits NaN."""

    def __init__(self, max_batch: int = 0, nan: bool = False, fail_first: int = 0):
        super().__init__()
        self.max_batch, self.nan, self.fail_first, self.batches = max_batch, nan, fail_first, []

    def forward(self, x):
        self.batches.append(x.shape[0])
        if x.shape[0] > self.max_batch or len(self.batches) <= self.fail_first:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return x * float("nan") if self.nan else x.clone()


def write_torchscript(path: Path, module: nn.Module, normalization=None, activation="none", surface_channel=0, **extra) -> Path:
    torch.jit.script(module).save(str(path))
    sidecar = {"format": "offlinepack-torchscript", "version": 1, "patch_size": list(PATCH),
               "normalization": normalization or {"kind": "none"}, "activation": activation,
               "surface_channel": surface_channel, **extra}
    path.with_suffix(".json").write_text(json.dumps(sidecar))
    return path


def cpu_engine(paths, **kwargs) -> Engine:
    settings = kwargs.pop("settings", InferenceSettings(device="cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_engine(paths, settings=settings, **kwargs)


def direct_engine(network: nn.Module, batch_size=None, devices=("cpu",), mirror=(0, 1, 2)) -> Engine:
    model = LoadedModel(name="net", kind="test", source=Path("net"), networks=(network,), patch_size=PATCH,
                        preprocessing=Preprocessing(normalization=Normalization(kind="none")), activation="none",
                        surface_channel=0, num_outputs=1)
    return Engine([model], [1.0], InferenceSettings(device="cpu", batch_size=batch_size, mirror_axes=mirror), devices, "fp32")


def reference_ramp(volume: np.ndarray, step: float, mirror_axes) -> np.ndarray:
    """Straight loops over tiles and flips: nnU-Net's weighted average written out by hand."""
    gauss = gaussian_importance_map(PATCH).astype(np.float64)
    acc, weight = np.zeros(volume.shape), np.zeros(volume.shape)
    ramp = np.arange(PATCH[0]).reshape(-1, 1, 1)
    flips = [c for n in range(len(mirror_axes) + 1) for c in itertools.combinations(mirror_axes, n)]
    for origin in tile_origins(volume.shape, PATCH, step):
        sl = tuple(slice(o, o + p) for o, p in zip(origin, PATCH))
        tile = volume[sl].astype(np.float64)
        outs = [np.flip(np.flip(tile, f) + ramp, f) if f else tile + ramp for f in flips]
        acc[sl] += np.mean(outs, axis=0) * gauss
        weight[sl] += gauss
    return acc / weight


def test_identity_model_returns_the_input_exactly(tmp_path):
    engine = cpu_engine([write_torchscript(tmp_path / "id.pt", Identity())])
    volume = np.random.default_rng(0).integers(0, 256, (21, 13, 17), dtype=np.uint8)
    out = engine.predict(volume)
    assert out.dtype == np.float16 and out.shape == volume.shape
    np.testing.assert_array_equal(out, volume.astype(np.float16))


def test_volume_smaller_than_patch_is_padded_and_cropped_back(tmp_path):
    engine = cpu_engine([write_torchscript(tmp_path / "id.pt", Identity())])
    volume = np.random.default_rng(1).integers(0, 256, (5, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(engine.predict(volume), volume.astype(np.float16))


@pytest.mark.parametrize("mirror", [(), (0,), (1, 2), (0, 1, 2)])
def test_tta_matches_hand_written_average(tmp_path, mirror):
    engine = cpu_engine([write_torchscript(tmp_path / "ramp.pt", Ramp())], settings=InferenceSettings(device="cpu", mirror_axes=mirror, step_size=0.5))
    volume = np.random.default_rng(2).integers(0, 100, (19, 12, 10), dtype=np.uint8)
    expected = reference_ramp(volume, 0.5, mirror)
    np.testing.assert_allclose(engine.predict(volume).astype(np.float64), expected, rtol=1e-3, atol=0.02)
    if 0 in mirror:  # flipping z and back averages the ramp to its middle: 3.5 added everywhere
        np.testing.assert_allclose(expected, volume + 3.5, atol=1e-9)


def test_torch_export_program_with_dynamic_batch(tmp_path):
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(Ramp(), (torch.zeros(2, 1, *PATCH),), dynamic_shapes={"x": {0: batch}})
    path = tmp_path / "ramp.pt2"
    torch.export.save(program, str(path))
    write_sidecar = json.dumps({"format": "offlinepack-torchscript", "version": 1, "patch_size": list(PATCH),
                                "normalization": {"kind": "none"}, "activation": "none", "surface_channel": 0})
    path.with_suffix(".json").write_text(write_sidecar)
    engine = cpu_engine([path])
    assert engine.describe()["models"][0]["kind"] == "torch.export"
    volume = np.random.default_rng(7).integers(0, 100, (11, 9, 8), dtype=np.uint8)
    np.testing.assert_allclose(engine.predict(volume).astype(np.float64), reference_ramp(volume, 0.5, (0, 1, 2)), rtol=1e-3, atol=0.02)


def test_ensemble_weights_average_probabilities(tmp_path):
    low = write_torchscript(tmp_path / "low.pt", Constant(0.2))
    high = write_torchscript(tmp_path / "high.pt", Constant(0.8))
    volume = np.ones((9, 9, 9), dtype=np.uint8)
    out = cpu_engine([low, high], weights=[1, 3]).predict(volume)
    np.testing.assert_allclose(out.astype(np.float32), 0.65, atol=1e-3)
    out = cpu_engine([low, high]).predict(volume)
    np.testing.assert_allclose(out.astype(np.float32), 0.5, atol=1e-3)
    with pytest.raises(InferenceError, match="invalid ensemble weights") as info:
        cpu_engine([low, high], weights=[1])
    assert info.value.problems == ("1 weights for 2 models",)
    with pytest.raises(InferenceError, match="invalid ensemble weights"):
        cpu_engine([low, high], weights=[0, 0])


def test_softmax_sidecar_with_ct_normalisation(tmp_path):
    class TwoClass(nn.Module):
        def forward(self, x):
            return torch.cat([torch.zeros_like(x), x], dim=1)  # logit of surface = normalised intensity

    path = write_torchscript(tmp_path / "two.pt", TwoClass(), activation="softmax", surface_channel=1,
                             normalization={"kind": "ct", "lower": 0, "upper": 212, "mean": 87.54, "std": 47.74})
    volume = np.random.default_rng(3).integers(0, 256, (10, 10, 10), dtype=np.uint8)
    expected = 1 / (1 + np.exp(-(np.clip(volume, 0, 212) - 87.54) / 47.74))
    np.testing.assert_allclose(cpu_engine([path]).predict(volume).astype(np.float64), expected, atol=1e-3)


def test_builtin_unet_checkpoint_runs(tmp_path):
    config = UNetConfig(features=(4, 8), patch_size=(8, 8, 8))
    ckpt = save_checkpoint(build_unet(config), config, tmp_path / "unet")
    engine = cpu_engine([ckpt])
    out = engine.predict(np.random.default_rng(4).integers(0, 256, (12, 9, 10), dtype=np.uint8))
    assert out.shape == (12, 9, 10) and 0 <= out.min() and out.max() <= 1
    described = engine.describe()
    assert described["devices"] == ["cpu"] and described["precision"] == "fp32"
    assert described["models"][0]["kind"] == "builtin-unet" and len(described["models"][0]["files"][1]["sha256"]) == 64
    assert described["batch_size_used"] == {"cpu": {0: 4}}
    seconds = engine.estimate_seconds((320, 320, 320))
    assert seconds is not None and seconds > 0


def test_cpu_warning_says_how_long(tmp_path):
    path = write_torchscript(tmp_path / "id.pt", Identity())
    with pytest.warns(UserWarning, match=r"running on CPU, which is slow \(about \d+ s per 320x320x320 volume\)"):
        build_engine([path], settings=InferenceSettings(device="auto"), cuda_count=0)


def test_predict_many_spreads_over_devices_and_keeps_order(tmp_path):
    engine = direct_engine(Identity(), devices=("cpu", "cpu"))
    rng = np.random.default_rng(5)
    items = [(f"v{i}", rng.integers(0, 256, (8 + i, 9, 8), dtype=np.uint8)) for i in range(6)]
    results = list(engine.predict_many(iter(items)))
    assert [r[0] for r in results] == [i for i, _ in items]
    for (_, out), (_, vol) in zip(results, items):
        np.testing.assert_array_equal(out, vol.astype(np.float16))


def test_predict_many_passes_on_source_errors(tmp_path):
    engine = direct_engine(Identity())

    def items():
        yield "a", np.zeros((8, 8, 8), dtype=np.uint8)
        raise OSError("disk went away")

    got = []
    with pytest.raises(OSError, match="disk went away"):
        for item in engine.predict_many(items()):
            got.append(item[0])
    assert got == ["a"]


@pytest.mark.parametrize(("shape", "word"), [((16, 16), "2D"), ((2, 8, 8, 8), "4D")])
def test_2d_and_4d_volumes_are_refused(shape, word):
    with pytest.raises(InferenceError, match=f"volume scan7 is {word} with shape"):
        direct_engine(Identity()).predict(np.zeros(shape, dtype=np.uint8), "scan7")


def test_non_uint8_volumes_are_converted_with_a_warning():
    engine = direct_engine(Identity())
    with pytest.warns(UserWarning, match="dtype float32 converted to uint8 \\(rounded\\)"):
        out = engine.predict(np.full((8, 8, 8), 99.6, dtype=np.float32))
    assert (out == 100).all()
    with pytest.warns(UserWarning, match=r"dtype uint16 converted to uint8 \(rescaled from \[0, 1000\] to \[0, 255\]\)"):
        out = engine.predict(np.array([0, 1000] * 256, dtype=np.uint16).reshape(8, 8, 8))
    assert sorted(np.unique(out)) == [0, 255]
    with pytest.raises(InferenceError, match="contains NaN"):
        engine.predict(np.full((8, 8, 8), np.nan))


def test_nan_output_names_the_volume():
    with pytest.raises(InferenceError, match="volume s42: the model output has 512 NaN/inf values") as info:
        direct_engine(Broken(max_batch=99, nan=True)).predict(np.ones((8, 8, 8), dtype=np.uint8), "s42")
    assert "fp32" in info.value.hint


def test_out_of_memory_halves_the_batch_and_gives_the_same_result():
    volume = np.random.default_rng(6).integers(0, 256, (12, 12, 12), dtype=np.uint8)
    network = Broken(max_batch=2)
    out = direct_engine(network, batch_size=8).predict(volume)
    np.testing.assert_array_equal(out, volume.astype(np.float16))
    assert network.batches[:3] == [8, 4, 2]


def test_out_of_memory_at_batch_one_moves_sums_to_the_host():
    volume = np.random.default_rng(8).integers(0, 256, (12, 12, 12), dtype=np.uint8)
    engine = direct_engine(Broken(max_batch=8, fail_first=2), batch_size=2)
    with pytest.warns(UserWarning, match="volume v: out of GPU memory on cpu: keeping sums in host memory"):
        out = engine.predict(volume, "v")
    np.testing.assert_array_equal(out, volume.astype(np.float16))
    assert engine.describe()["accumulation"] == {"cpu": {0: "host"}}


def test_out_of_memory_at_batch_one_is_a_clear_error():
    with pytest.warns(UserWarning, match="keeping sums in host memory"), pytest.raises(InferenceError, match="CUDA out of memory on cpu with model net \\(patch \\[8, 8, 8\\]\\), even at batch size 1") as info:
        direct_engine(Broken(max_batch=0), batch_size=2).predict(np.ones((8, 8, 8), dtype=np.uint8), "s1")
    assert "smaller patch" in info.value.hint


def test_model_path_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        cpu_engine([tmp_path / "nope"])
    (tmp_path / "random.bin").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="not a model offlinepack can read"):
        cpu_engine([tmp_path / "random.bin"])
    path = write_torchscript(tmp_path / "id.pt", Identity())
    with pytest.raises(ModelLoadError, match="folds apply only to nnU-Net"):
        cpu_engine([path], folds=[0])
    path.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError, match="no sidecar id.json"):
        cpu_engine([path])
    path.with_suffix(".json").write_text(json.dumps({"format": "offlinepack-torchscript", "patch_size": [8, 8, 8], "colour": 1}))
    with pytest.raises(ModelLoadError, match="invalid sidecar") as info:
        cpu_engine([path])
    assert "unknown key 'colour'" in info.value.problems and "missing key 'activation'" in info.value.problems
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    (tmp_path / "bad.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(ModelLoadError):
        cpu_engine([tmp_path / "bad.pt"])
    with pytest.raises(InferenceError, match="no model given"):
        build_engine([])


def test_predict_many_warns_about_conversions_on_the_callers_thread():
    engine = direct_engine(Identity())
    items = [("f", np.full((8, 8, 8), 3.0, dtype=np.float64)), ("u", np.ones((8, 8, 8), dtype=np.uint8))]
    with pytest.warns(UserWarning, match="volume f: dtype float64 converted to uint8") as caught:
        out = dict(engine.predict_many(items))
    assert len(caught) == 1 and (out["f"] == 3).all()


@pytest.mark.slow
def test_compile_setting_gives_the_same_probabilities(tmp_path):
    """torch.compile is opt-in (InferenceSettings.compile); checked here on CPU (inductor), ~40 s."""
    config = UNetConfig(features=(4, 8), patch_size=(8, 8, 8))
    ckpt = save_checkpoint(build_unet(config), config, tmp_path / "unet")
    volume = np.random.default_rng(9).integers(0, 256, (12, 9, 10), dtype=np.uint8)
    eager = cpu_engine([ckpt]).predict(volume)
    compiled = cpu_engine([ckpt], settings=InferenceSettings(device="cpu", compile=True)).predict(volume)
    np.testing.assert_allclose(compiled.astype(np.float32), eager.astype(np.float32), atol=2e-3)
