"""torch.compile as the engine's default on CUDA: the decision, the fall-back to eager when compilation
fails (a real torch.compile with a backend that raises, on CPU), the padded last batch, and what a run
records (`--no-compile`, the default, a fall-back) in its ledger."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.inference import InferenceSettings, build_engine
from offlinepack.inference.sliding_window import WindowPlan, sliding_window_logits
from offlinepack.inference.settings import InferenceError, resolve_compile
from offlinepack.models.builtin_unet import UNetConfig, build_unet, save_checkpoint
from offlinepack.run import RunConfig, run_pipeline
from offlinepack.run.pipeline import _default_engine

FAILING_BACKEND = "offlinepack_test_failing_backend"


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("this backend cannot compile anything (test)")


if FAILING_BACKEND not in torch._dynamo.list_backends(exclude_tags=()):
    torch._dynamo.register_backend(_failing_backend, name=FAILING_BACKEND)


@pytest.fixture(scope="module")
def unet(tmp_path_factory) -> Path:
    config = UNetConfig(features=(4, 8), patch_size=(8, 8, 8))
    torch.manual_seed(0)
    return save_checkpoint(build_unet(config), config, tmp_path_factory.mktemp("unet") / "unet")


def _engine(path: Path, **settings):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "running on CPU, which is slow"
        return build_engine([path], settings=InferenceSettings(device="cpu", **settings))


@pytest.mark.parametrize(
    "requested, device, torch_version, python, triton, expected",
    [
        (None, "cuda", "2.11.0+cu130", (3, 12), True, (True, "on: auto (CUDA)")),
        (None, "cpu", "2.13.0+cpu", (3, 11), True, (False, "off: auto compiles on CUDA only (CPU runs eager)")),
        (False, "cuda", "2.11.0", (3, 12), True, (False, "off: compile = false (--no-compile)")),
        (True, "cpu", "2.13.0", (3, 11), True, (True, "on: compile = true")),
        (None, "cuda", "2.3.1", (3, 12), True,
         (False, "off: torch 2.3.1 cannot compile on Python 3.12 (needs torch >= 2.4); running eager")),
        (None, "cuda", "2.5.1", (3, 13), True,
         (False, "off: torch 2.5.1 cannot compile on Python 3.13 (needs torch >= 2.6); running eager")),
        (None, "cuda", "2.11.0", (3, 12), False,
         (False, "off: triton is not installed (torch.compile's CUDA backend needs it); running eager")),
    ],
)
def test_compile_decision(requested, device, torch_version, python, triton, expected):
    assert resolve_compile(requested, device, torch_version, python, triton) == expected


def test_compile_setting_is_checked():
    with pytest.raises(InferenceError) as caught:
        InferenceSettings(compile="yes")
    assert list(caught.value.problems) == ["compile must be true, false or unset (auto), got 'yes'"]


def test_default_on_cpu_is_eager_and_says_why(unet):
    engine = _engine(unet)
    info = engine.describe()["compile"]
    assert info == {"requested": "auto", "enabled": False, "reason": "off: auto compiles on CUDA only (CPU runs eager)",
                    "backend": "inductor", "cache_dir": None, "seconds": None, "fallback": None}
    assert engine._states[0].networks is engine._states[0].eager


def test_failing_compile_falls_back_to_eager_with_a_warning_and_the_same_output(unet):
    volume = np.random.default_rng(3).integers(0, 256, (12, 9, 10), dtype=np.uint8)
    eager = _engine(unet, compile=False).predict(volume)
    with pytest.warns(UserWarning, match="torch.compile failed compiling model .* running the eager networks") as caught:
        engine = build_engine([unet], settings=InferenceSettings(device="cpu", compile=True, compile_backend=FAILING_BACKEND))
    assert any("this backend cannot compile anything" in str(w.message) for w in caught)
    info = engine.describe()["compile"]
    assert info["requested"] is True and info["enabled"] is False
    assert info["reason"] == "off: compilation failed, fell back to eager"
    assert info["fallback"].startswith("compiling model unet on cpu: BackendCompilerFailed")
    assert "this backend cannot compile anything" in info["fallback"]
    np.testing.assert_array_equal(engine.predict(volume), eager)


def test_compile_failing_at_a_volume_falls_back_for_that_volume_and_after(unet):
    """The warm-up succeeds (a backend that passes the graph through), then a later graph fails: the
    volume is still predicted, eagerly, and the fall-back is recorded with its volume id."""
    volume = np.random.default_rng(4).integers(0, 256, (12, 9, 10), dtype=np.uint8)
    eager = _engine(unet, compile=False).predict(volume)
    engine = _engine(unet, compile=True, compile_backend="eager")  # dynamo traces, runs the graph as is
    assert engine.describe()["compile"]["enabled"] is True and engine.describe()["compile"]["seconds"] > 0
    state = engine._states[0]

    def broken(x):
        raise RuntimeError("recompilation failed (test)")

    state.networks = [[broken]]
    with pytest.warns(UserWarning, match="torch.compile failed on volume v7"):
        out = engine.predict(volume, "v7")
    np.testing.assert_array_equal(out, eager)
    info = engine.describe()["compile"]
    assert info["enabled"] is False and info["fallback"] == "on volume v7: RuntimeError: recompilation failed (test)"


def test_padded_last_batch_gives_the_same_sums_with_one_batch_shape():
    seen = []

    class Net(torch.nn.Module):
        def forward(self, x):
            seen.append(x.shape[0])
            return x * 2 + 1

    data = torch.from_numpy(np.random.default_rng(5).random((1, 12, 10, 9), dtype=np.float32))
    plain = WindowPlan(3, "device", "fp32", (0, 1), 0.5)
    padded = WindowPlan(3, "device", "fp32", (0, 1), 0.5, pad_batch=True)
    a, _ = sliding_window_logits([Net()], data, (8, 8, 8), 1, plain)
    assert seen[-1] != 3  # 8 tiles x 4 flips = 32 items: the last batch holds 2
    seen.clear()
    b, _ = sliding_window_logits([Net()], data, (8, 8, 8), 1, padded)
    assert set(seen) == {3}
    torch.testing.assert_close(a, b)


@pytest.fixture
def competition(tmp_path: Path) -> Path:
    import tifffile

    folder = tmp_path / "data" / "test_images"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "a.tif", rng.integers(0, 256, (12, 10, 9), dtype=np.uint8))
    return folder


@pytest.fixture
def run_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OFFLINEPACK_KAGGLE_ROOT", str(tmp_path / "no-kaggle"))
    return tmp_path


def _last_record(path: Path) -> dict:
    return json.loads(path.read_text().strip().splitlines()[-1])


def test_run_records_the_default_and_no_compile(unet, competition, run_env):
    runner = CliRunner()
    common = ["run", "--model", str(unet), "--input", str(competition), "-o", str(run_env / "out" / "submission.zip"),
              "--mirror-axes", "none", "--force"]
    result = runner.invoke(app, common)
    assert result.exit_code == 0, result.output
    ledger = run_env / "out" / "offlinepack-runs.jsonl"
    record = _last_record(ledger)
    assert record["engine"]["compile"]["requested"] == "auto"
    assert record["engine"]["compile"]["enabled"] is False
    assert "compile" not in record["seconds"]
    result = runner.invoke(app, [*common, "--no-compile"])
    assert result.exit_code == 0, result.output
    record = _last_record(ledger)
    assert record["config"]["inference"]["compile"] is False
    assert record["engine"] is None  # compiled or not, the same masks: the first run's are reused
    result = runner.invoke(app, [*common, "--no-compile", "--overwrite"])
    record = _last_record(ledger)
    assert record["engine"]["compile"] == {"requested": False, "enabled": False, "reason": "off: compile = false (--no-compile)",
                                           "backend": "inductor", "cache_dir": None, "seconds": None, "fallback": None}


def test_run_ledger_records_a_compile_fall_back_and_the_cache_folder(unet, competition, run_env, monkeypatch):
    """The run's own engine factory with compile forced on CPU and a failing backend: the run completes
    eagerly and its ledger says why; the compile cache folder is the work folder's."""
    from offlinepack.inference import compiling

    monkeypatch.setattr(compiling, "_USER_CACHE_DIR", None)
    monkeypatch.setenv(compiling.CACHE_ENV, "placeholder")  # so that teardown restores the variable's state
    monkeypatch.delenv(compiling.CACHE_ENV)
    seen = {}

    def factory(models, config):
        settings = {**config.inference, "compile": True, "compile_backend": FAILING_BACKEND}
        cache = config.output.parent / "submission-masks" / ".compile-cache"
        seen["cache"] = cache
        return _default_engine(models, replace(config, inference=settings), compile_cache=cache)

    config = RunConfig(models=(str(unet),), input=competition, output=run_env / "out" / "submission.zip", force=True,
                       inference={"mirror_axes": ()})
    with pytest.warns(UserWarning, match="torch.compile failed"):
        report = run_pipeline(config, engine_factory=factory, kaggle_root=run_env / "no-kaggle")
    assert report.exit_code == 0 and report.zip is not None
    record = _last_record(run_env / "out" / "offlinepack-runs.jsonl")
    info = record["engine"]["compile"]
    assert info["enabled"] is False and "BackendCompilerFailed" in info["fallback"]
    assert info["cache_dir"] == str(seen["cache"]) and seen["cache"].is_dir()
    assert os.environ[compiling.CACHE_ENV] == str(seen["cache"])


@pytest.mark.gpu
def test_default_compiles_on_cuda_and_matches_eager(unet, tmp_path):
    """On a CUDA machine the default engine is compiled (warm-up at build, seconds reported, cache in the
    given folder) and gives the eager engine's probabilities within fp16 tolerance."""
    volume = np.random.default_rng(6).integers(0, 256, (20, 17, 19), dtype=np.uint8)
    eager = build_engine([unet], settings=InferenceSettings(device="cuda:0", compile=False)).predict(volume)
    engine = build_engine([unet], settings=InferenceSettings(device="cuda:0"), compile_cache=tmp_path / "cache")
    info = engine.describe()["compile"]
    assert info["enabled"] is True and info["fallback"] is None and info["seconds"] > 0, info
    np.testing.assert_allclose(engine.predict(volume).astype(np.float32), eager.astype(np.float32), atol=5e-3)
    assert engine.describe()["compile"]["fallback"] is None
