"""Issue 10, run side: one bad volume never sinks a run, resume never reuses a damaged mask, bad settings are
refused before any side effect, and `run --json` keeps stdout machine-readable. Real TIFFs, zips and ledgers;
a tiny real built-in U-Net checkpoint runs on CPU on 32^3 volumes (the bundled demo model's own runs are covered
in test_run.py)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from offlinepack.inference.inputs import check_volume
from offlinepack.submission import read_tiff_like_scorer
from offlinepack.volumes import find_inputs
from tests.support.cli import invoke, write_competition
from tests.support.runs import TINY, ledger_records, write_tiny_model

OLD_ZIP = b"the previous good submission"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny-unet")


FAST = ["--mirror-axes", "none", "--step-size", "1"]


def _run(data: Path, env: dict[str, str], model: Path, *extra: str):
    return invoke(["run", "--model", str(model), "--input", str(data), *FAST, *extra], env)


# --- defect 7: one bad volume fails by id; the rest go on; --on-error empty; ledger exit == process exit ---

def test_inf_volume_fails_by_id_old_zip_kept_then_on_error_empty_hands_in_a_zip(tmp_path: Path, env, model) -> None:
    data = write_competition(tmp_path / "comp", {"good": TINY})
    bad = np.full(TINY, 100.0, dtype=np.float32)
    bad[3, 4, 5] = np.inf
    tifffile.imwrite(data / "test_images" / "inf.tif", bad, photometric="minisblack")
    (data / "test.csv").write_text("id,scroll_id\ngood,1\ninf,1\n")
    out = tmp_path / "submission.zip"
    out.write_bytes(OLD_ZIP)

    failed = _run(data, env, model)
    assert failed.exit_code == 1, failed.output
    assert "error: volume inf failed: contains 1 NaN or inf value(s) (dtype float32)" in failed.output
    assert "hint: " in failed.output and "--on-error empty" in failed.output
    assert out.read_bytes() == OLD_ZIP  # default: fail the volume, keep the old zip
    (record,) = ledger_records(tmp_path / "offlinepack-runs.jsonl")
    assert record["exit_code"] == failed.exit_code == 1 and record["status"] == "failed"
    assert [v["id"] for v in record["volumes"]] == ["good"]

    empty = _run(data, env, model, "--on-error", "empty", "--json")
    assert empty.exit_code == 1, empty.output
    report = json.loads(empty.stdout)
    assert report["empty_masks"] == ["inf"] and [f["id"] for f in report["failures"]] == ["inf"]
    with zipfile.ZipFile(out) as archive:  # the submission goes in: the good mask plus an empty one of inf's shape
        assert sorted(archive.namelist()) == ["good.tif", "inf.tif"]
        stand_in = read_tiff_like_scorer(archive.read("inf.tif"))
        good = read_tiff_like_scorer(archive.read("good.tif"))
    assert stand_in.shape == TINY and stand_in.dtype == np.uint8 and not stand_in.any()
    assert good.shape == TINY
    last = ledger_records(tmp_path / "offlinepack-runs.jsonl")[-1]
    assert last["exit_code"] == 1 and last["empty_masks"] == ["inf"] and last["on_error"] == "empty"
    assert {v["id"]: v["empty_on_error"] for v in last["volumes"]} == {"good": False, "inf": True}
    assert last["submission"]["sha256"] == report["submission"]["sha256"]
    # the stand-in is never reused: no sidecar, so a fixed volume is computed next time
    assert not (tmp_path / "submission-masks" / "inf.json").exists()
    assert invoke(["validate", str(out), "--input", str(data)], env).exit_code == 0


def test_duplicate_id_in_test_csv_is_refused_when_inputs_are_planned_with_line_numbers(tmp_path: Path, env, model) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY, "22": TINY}, csv_ids=["11", "22", "11"])
    result = _run(data, env, model)
    assert result.exit_code == 2, result.output
    # the readiness check already plans the inputs, so it is the one that names the line
    assert f"{data / 'test.csv'} line 4: id '11' repeats line 2" in result.output
    assert "hint: " in result.output
    assert not (tmp_path / "submission-masks").exists() and not (tmp_path / "offlinepack-runs.jsonl").exists()


def test_test_csv_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY, "22": TINY})
    (data / "test.csv").write_bytes(b"\xef\xbb\xbfid,scroll_id\r\n22,1\r\n11,1\r\n")  # Excel's "CSV UTF-8"
    inputs = find_inputs(data)
    assert [v.id for v in inputs.volumes] == ["22", "11"] and inputs.missing_ids == ()


def test_float_volumes_within_0_1_are_rescaled_not_rounded() -> None:
    normalised = np.linspace(0.0, 1.0, 16 * 16 * 16, dtype=np.float32).reshape(16, 16, 16)
    converted, note = check_volume(normalised, "v")
    assert converted.min() == 0 and converted.max() == 255 and len(np.unique(converted)) == 256
    assert "normalised intensities: scaled by 255" in note
    # beyond 1 the range decides again: 0..255 floats are rounded, not scaled
    converted, note = check_volume(np.full((4, 4, 4), 99.6, np.float32), "w")
    assert (converted == 100).all() and "(rounded)" in note


def test_ledger_exit_code_matches_the_process_when_the_run_stops(tmp_path: Path, env, model) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY})
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")  # a model that does not load stops the run: exit 2
    result = invoke(["run", "--model", str(broken), "--input", str(data)], env)
    assert result.exit_code == 2, result.output
    (record,) = ledger_records(tmp_path / "offlinepack-runs.jsonl")
    assert record["status"] == "error" and record["exit_code"] == 2


def test_a_bug_that_stops_the_run_is_recorded_with_exit_code_1(tmp_path: Path, env, model) -> None:
    """A non-OfflinepackError is a bug: Python exits 1 with its traceback, so the ledger must say 1, not 2."""
    from offlinepack.run import RunConfig, run_pipeline

    data = write_competition(tmp_path / "comp", {"11": TINY})

    def engine_that_crashes(models, config):
        raise RuntimeError("a bug in the engine")

    with pytest.raises(RuntimeError):
        run_pipeline(RunConfig(models=("demo",), input=data), kaggle_root=tmp_path / "no-kaggle", cwd=tmp_path,
                     engine_factory=engine_that_crashes, check_ready=False)
    (record,) = ledger_records(tmp_path / "offlinepack-runs.jsonl")
    assert record["exit_code"] == 1 and record["status"] == "error"


# --- defect 8: a damaged mask in the work folder is recomputed, not reused ---

def test_resume_recomputes_a_mask_whose_bytes_changed(tmp_path: Path, env, model) -> None:
    data = write_competition(tmp_path / "comp", {"11": TINY})
    first = _run(data, env, model, "--json")
    assert first.exit_code == 0, first.output
    mask = tmp_path / "submission-masks" / "11.tif"
    with tifffile.TiffFile(mask) as tif:  # flip bytes inside one page's pixel data: the headers still read fine
        start, count = tif.pages[5].dataoffsets[0], tif.pages[5].databytecounts[0]
    damaged = bytearray(mask.read_bytes())
    for offset in range(start, start + count):
        damaged[offset] ^= 0xFF
    mask.write_bytes(bytes(damaged))
    again = _run(data, env, model, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["volumes"][0]["reused"] is False
    assert invoke(["validate", str(tmp_path / "submission.zip"), "--input", str(data)], env).exit_code == 0
    assert json.loads(_run(data, env, model, "--json").stdout)["volumes"][0]["reused"] is True  # intact again: reused


# --- defect 11: every bad setting is refused before any side effect ---

@pytest.mark.parametrize(("flags", "named"), [
    (["--device", "tpu"], "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["--step-size", "0"], "step_size must be in (0, 1], got 0.0"),
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["--precision", "fp8"], "precision must be one of auto, fp16, bf16, fp32, got 'fp8'"),
    (["--mirror-axes", "5"], "mirror_axes must be distinct axes among 0, 1, 2, got [5]"),
    (["--on-error", "skip"], "on_error must be one of fail, empty, got 'skip'"),
])
def test_bad_run_settings_are_refused_before_any_side_effect(tmp_path: Path, env, flags, named) -> None:
    out = tmp_path / "out" / "submission.zip"
    out.parent.mkdir()
    out.write_bytes(OLD_ZIP)
    result = invoke(["run", "-o", str(out), *flags], env)  # demo defaults: nothing given but the bad flag
    assert result.exit_code == 2, result.output
    assert named in result.output and "hint: valid values:" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["submission.zip"]  # no masks folder, no ledger
    assert out.read_bytes() == OLD_ZIP
    assert not any((tmp_path / "tmp").iterdir())  # not even the demo sample was written


def test_bad_values_in_run_toml_are_all_named_before_any_work(tmp_path: Path, env, model) -> None:
    (tmp_path / "run.toml").write_text('on_error = "skip"\n[inference]\ndevice = "tpu"\nstep_size = 0\n')
    result = invoke(["run", "--config", str(tmp_path / "run.toml")], env)
    assert result.exit_code == 2
    for named in ("inference.device must be", "inference.step_size must be in (0, 1]", "on_error: must be one of"):
        assert named in result.output, result.output
    assert "hint:" in result.output and not (tmp_path / "submission-masks").exists()


# --- smaller ones: run --json on stdout when the run cannot start ---

@pytest.mark.parametrize("flags", [["--step-size", "0"], ["--input", "missing-folder"], ["--folds", "0,x"]])
def test_run_json_prints_the_error_on_stdout_when_the_run_cannot_start(tmp_path: Path, env, flags) -> None:
    result = invoke(["run", "--json", *flags], env)
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["exit_code"] == 2 and report["status"] == "error" and report["error"] and report["hint"]
    assert "error: " in result.stderr and "hint: " in result.stderr
