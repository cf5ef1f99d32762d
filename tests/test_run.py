"""`offlinepack run / validate / runs` end to end through the CLI, with the real volumes reader, the
real inference engine (bundled demo U-Net on CPU) and real TIFFs read back the scorer's way."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from offlinepack.ledger import RunRecord
from offlinepack.submission import read_tiff_like_scorer
from tests.support.cli import SMALL
from tests.support.cli import invoke as _invoke
from tests.support.cli import write_competition as _competition

REPO = Path(__file__).resolve().parent.parent


def _ledger(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_run_with_no_arguments_gives_a_valid_zip(tmp_path: Path, env: dict[str, str]) -> None:
    result = _invoke(["run"], env)
    assert result.exit_code == 0, result.output
    out = tmp_path / "submission.zip"
    assert "demo" in result.output and f"wrote {out}" in result.output
    with zipfile.ZipFile(out) as archive:
        assert archive.namelist() == ["1000001.tif"]
        mask = read_tiff_like_scorer(archive.read("1000001.tif"))
    assert mask.shape == (128, 128, 128) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert 0.02 < mask.mean() < 0.4  # the demo model finds the sheets, not nothing and not everything
    (record,) = _ledger(tmp_path / "offlinepack-runs.jsonl")
    assert record["status"] == "ok" and record["submission"]["size"] == out.stat().st_size
    assert record["volumes"][0]["shape"] == [128, 128, 128] and record["volumes"][0]["dtype"] == "uint8"
    assert record["models"] and all(len(m["sha256"]) == 64 for m in record["models"])
    assert record["environment"]["tiff_reader"] and record["environment"]["packages"]["torch"]
    assert list(record) == ["type", "run_id", "started", "finished", "exit_code", "status", "error", "output",
                            "work_dir", "demo", "input", "config", "models", "model_packs", "wheelhouse",
                            "environment", "engine", "doctor", "volumes", "failures", "on_error", "empty_masks",
                            "submission", "seconds"]
    assert RunRecord.from_dict(record).to_dict() == record  # the ledger reads back exactly what it wrote
    validated = _invoke(["validate", str(out), "--input", record["input"]["root"]], env)
    assert validated.exit_code == 0 and "valid:" in validated.output
    # without the source volumes, the ledger beside the zip knows which run wrote it, its ids and shapes
    by_ledger = _invoke(["validate", str(out), "--json"], env)
    assert by_ledger.exit_code == 0 and record["run_id"] in json.loads(by_ledger.stdout)["note"]


@pytest.mark.slow
def test_small_volumes_resumable_and_overwrite(tmp_path: Path, env: dict[str, str]) -> None:
    data = _competition(tmp_path / "comp", {"11": SMALL, "22": (64, 80, 72)})
    args = ["run", "--model", "demo", "--input", str(data), "-o", str(tmp_path / "out" / "submission.zip"),
            "--ledger", str(tmp_path / "extra.jsonl"), "--json"]
    first = _invoke(args, env)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert [v["id"] for v in report["volumes"]] == ["11", "22"] and not any(v["reused"] for v in report["volumes"])
    with zipfile.ZipFile(tmp_path / "out" / "submission.zip") as archive:
        assert read_tiff_like_scorer(archive.read("22.tif")).shape == (64, 80, 72)
    second = json.loads(_invoke(args, env).stdout)
    assert all(v["reused"] for v in second["volumes"])
    assert second["submission"]["sha256"] == report["submission"]["sha256"]
    changed = json.loads(_invoke([*args, "--threshold", "0.7"], env).stdout)  # settings changed: nothing reused
    assert not any(v["reused"] for v in changed["volumes"])
    assert len(_ledger(tmp_path / "out" / "offlinepack-runs.jsonl")) == 3 == len(_ledger(tmp_path / "extra.jsonl"))
    # --overwrite recomputes even with matching settings (the sidecar is rewritten)
    sidecar = tmp_path / "out" / "submission-masks" / "11.json"
    before = sidecar.stat().st_mtime_ns
    forced = json.loads(_invoke([*args, "--threshold", "0.7", "--overwrite"], env).stdout)
    assert not any(v["reused"] for v in forced["volumes"]) and sidecar.stat().st_mtime_ns != before


def test_bad_volumes_fail_by_id_others_go_on_old_zip_kept_then_resume(tmp_path: Path, env: dict[str, str]) -> None:
    data = _competition(tmp_path / "comp", {"11": SMALL}, csv_ids=["11", "2d", "trunc", "4d", "gone"])
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "test_images" / "2d.tif")
    good = (data / "test_images" / "11.tif").read_bytes()
    (data / "test_images" / "trunc.tif").write_bytes(good[: len(good) // 2])
    import tifffile

    tifffile.imwrite(data / "test_images" / "4d.tif", np.zeros((2, 4, 8, 8), np.uint8), photometric="minisblack")
    out = tmp_path / "submission.zip"
    out.write_bytes(b"the previous good submission")
    result = _invoke(["run", "--model", "demo", "--input", str(data)], env)
    assert result.exit_code == 1, result.output
    for ident in ("2d", "trunc", "4d", "gone"):
        assert f"volume {ident} failed" in result.output
    # why a truncated file failed: what each reader said, not just "cannot read this TIFF"
    trunc_line = next(line for line in result.output.splitlines() if line.startswith("error: volume trunc failed"))
    assert "tifffile+imagecodecs: OSError" in trunc_line and "pillow: " in trunc_line, trunc_line
    assert out.read_bytes() == b"the previous good submission"
    assert (tmp_path / "submission-masks" / "11.tif").is_file()
    (record,) = _ledger(tmp_path / "offlinepack-runs.jsonl")
    assert record["status"] == "failed" and record["submission"] is None
    assert sorted(f["id"] for f in record["failures"]) == ["2d", "4d", "gone", "trunc"]
    assert [v["id"] for v in record["volumes"]] == ["11"]
    # the user drops the broken ids: the good volume's mask is reused, the zip is written
    (data / "test.csv").write_text("id,scroll_id\n11,1\n")
    for name in ("2d", "trunc", "4d"):
        (data / "test_images" / f"{name}.tif").unlink()
    again = _invoke(["run", "--model", "demo", "--input", str(data), "--json"], env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["volumes"][0]["reused"] is True
    assert zipfile.ZipFile(out).namelist() == ["11.tif"]
    assert "[1/1] 11: reused" in _invoke(["run", "--model", "demo", "--input", str(data)], env).output


def test_cannot_start_leaves_nothing_and_a_bad_ledger_is_refused_before_any_work(tmp_path: Path, env: dict[str, str]) -> None:
    data = _competition(tmp_path / "comp", {"11": SMALL})
    out = tmp_path / "new" / "deep" / "submission.zip"
    # not ready (CUDA asked for, none here): no empty output or work folders are left behind
    refused = _invoke(["run", "--model", "demo", "--input", str(data), "-o", str(out), "--device", "cuda"], env)
    assert refused.exit_code == 2 and "not ready to run" in refused.output
    assert not (tmp_path / "new").exists()
    # an extra ledger that cannot be written: refused up front, not after the zip replaced the old one
    old = tmp_path / "submission.zip"
    old.write_bytes(b"the previous good submission")
    (tmp_path / "a-folder").mkdir()
    for ledger, why in ((tmp_path / "a-folder", "is a folder"), (old / "runs.jsonl", "cannot be created")):
        result = _invoke(["run", "--model", "demo", "--input", str(data), "--ledger", str(ledger)], env)
        assert result.exit_code == 2 and f"--ledger {ledger}: {why}" in result.output, result.output
        assert "hint: pass --ledger" in result.output
    assert old.read_bytes() == b"the previous good submission" and not (tmp_path / "submission-masks").exists()
    assert not (tmp_path / "offlinepack-runs.jsonl").exists()
    # temp files a killed run left behind are swept by the next run that starts
    stale = [tmp_path / ".submission.zip.4242.tmp", tmp_path / "submission-masks" / ".11.tif.4242.tmp"]
    stale[1].parent.mkdir()
    for path in stale:
        path.write_bytes(b"half")
    assert _invoke(["run", "--model", "demo", "--input", str(data)], env).exit_code == 0
    assert not any(path.exists() for path in stale) and zipfile.ZipFile(tmp_path / "submission.zip").namelist() == ["11.tif"]
    bad_folds = _invoke(["run", "--model", "demo", "--input", str(data), "--folds", "0,x"], env)
    assert bad_folds.exit_code == 2 and "error: --folds 0,x: 'x' is not a valid int" in bad_folds.output


def test_nan_model_output_fails_that_volume_by_id(tmp_path: Path, env: dict[str, str]) -> None:
    torch = pytest.importorskip("torch")
    from offlinepack.demo import DEMO_CHECKPOINT
    from offlinepack.models.builtin_unet import load_checkpoint, save_checkpoint

    model, config = load_checkpoint(DEMO_CHECKPOINT)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    save_checkpoint(model, config, tmp_path / "nan-model")
    data = _competition(tmp_path / "comp", {"11": SMALL})
    result = _invoke(["run", "--model", str(tmp_path / "nan-model"), "--input", str(data), "--mirror-axes", "none"], env)
    assert result.exit_code == 1
    assert "volume 11 failed" in result.output
    assert "NaN" in result.output or "non-finite" in result.output
    assert not (tmp_path / "submission.zip").exists()


def test_output_not_writable_exits_2(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "a-file").write_text("x")
    result = _invoke(["run", "-o", str(tmp_path / "a-file" / "submission.zip")], env)
    assert result.exit_code == 2 and "is not writable" in result.output and "hint:" in result.output


@pytest.mark.slow
def test_zip_write_failure_like_a_full_disk_keeps_old_zip(tmp_path: Path, env: dict[str, str]) -> None:
    """A real EFBIG from RLIMIT_FSIZE while the zip is written (masks reused from a first run)."""
    data = _competition(tmp_path / "comp", {"11": SMALL, "22": SMALL})
    out = tmp_path / "out" / "submission.zip"
    assert _invoke(["run", "--model", "demo", "--input", str(data), "-o", str(out)], env).exit_code == 0
    good = out.read_bytes()
    out.write_bytes(b"previous")  # so a replacement would show
    limit = max(len(good) // 2, 16_384)

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = subprocess.run(
        [sys.executable, "-m", "offlinepack", "run", "--model", "demo", "--input", str(data), "-o", str(out)],
        cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, preexec_fn=small_files, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert "could not write" in result.stderr and "previous submission.zip is unchanged" in result.stderr
    assert out.read_bytes() == b"previous"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".submission.zip")]


def test_bad_run_toml_key_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "run.toml").write_text('modles = ["demo"]\n[post]\nthreshold = 0.4\n')
    result = _invoke(["run", "--config", str(tmp_path / "run.toml")], env)
    assert result.exit_code == 2 and "unknown key 'modles'" in result.output


def test_kernel_layout_default_output_in_working(tmp_path: Path, env: dict[str, str]) -> None:
    kaggle = tmp_path / "kaggle"
    (kaggle / "working").mkdir(parents=True)
    _competition(kaggle / "input" / "competitions" / "vesuvius-challenge-surface-detection", {"7": SMALL})
    result = _invoke(["run", "--model", "demo"], {**env, "OFFLINEPACK_KAGGLE_ROOT": str(kaggle)})
    assert result.exit_code == 0, result.output
    assert zipfile.ZipFile(kaggle / "working" / "submission.zip").namelist() == ["7.tif"]
    assert (kaggle / "working" / "offlinepack-runs.jsonl").is_file()


def test_runs_list_note_and_json(tmp_path: Path, env: dict[str, str]) -> None:
    ledger = tmp_path / "runs.jsonl"
    from offlinepack.ledger import append_record

    append_record(ledger, {"type": "run", "run_id": "20261125T100000Z-abc123", "finished": "2026-11-25T10:01:00Z",
                           "status": "ok", "volumes": [{}], "failures": [], "submission": {"sha256": "f" * 64, "size": 2_000_000}})
    assert "no runs recorded" in _invoke(["runs", "--ledger", str(tmp_path / "empty.jsonl")], env).output
    default = _invoke(["runs"], env)  # nothing in the cwd: say where runs written with -o are recorded
    assert default.exit_code == 0 and "no runs recorded" in default.output and "pass --ledger" in default.output
    noted = _invoke(["runs", "note", "20261125T1000", "--public-lb", "0.551", "--text", "thr 0.4", "--ledger", str(ledger)], env)
    assert noted.exit_code == 0 and "20261125T100000Z-abc123" in noted.output
    listing = _invoke(["runs", "--ledger", str(ledger)], {**env, "COLUMNS": "200"})
    assert listing.exit_code == 0 and "0.551" in listing.output and "fffffff" in listing.output
    data = json.loads(_invoke(["runs", "--ledger", str(ledger), "--json"], env).stdout)
    assert data["runs"][0]["public_lb"] == 0.551 and data["runs"][0]["notes"][0]["text"] == "thr 0.4"
    missing = _invoke(["runs", "--ledger", str(ledger), "note", "zzz", "--public-lb", "1"], env)
    assert missing.exit_code == 2 and "no run 'zzz'" in missing.output


def test_runs_and_validate_survive_a_damaged_ledger(tmp_path: Path, env: dict[str, str]) -> None:
    """Binary junk, a hand-edited record (volumes as a number, size as text): lines skipped or shown as "?",
    never a traceback; validate's ledger fallback does not trust shapes it cannot parse."""
    ledger = tmp_path / "offlinepack-runs.jsonl"
    ledger.write_bytes(b'{"type":"run","run_id":"r1","volumes":5,"failures":[],"submission":{"size":"big","sha256":"ab"}}\n'
                       b"\xff\xfe\x00junk\n"
                       b'{"type":"run","run_id":"r2","volumes":[{"id":"7","shape":["x"]}],"submission":{"sha256":"cd"}}\n')
    listing = _invoke(["runs", "--ledger", str(ledger)], {**env, "COLUMNS": "200"})
    assert listing.exit_code == 0, listing.output
    assert "skipped unreadable line(s) 2" in listing.output and "r1" in listing.output and "?" in listing.output
    noted = _invoke(["runs", "note", "r1", "--text", "ok", "--ledger", str(ledger)], env)
    assert noted.exit_code == 0 and "noted run r1" in noted.output
    junk_only = tmp_path / "junk.jsonl"
    junk_only.write_bytes(b"\xff\xfe\n")
    missing = _invoke(["runs", "note", "r1", "--text", "x", "--ledger", str(junk_only)], env)
    assert missing.exit_code == 2 and f"offlinepack runs --ledger {junk_only}" in missing.output
    # a zip whose run record has unparseable shapes: checked entry by entry, not against bad shapes
    from offlinepack.hashing import sha256_file

    zip_path = tmp_path / "submission.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("7.tif", b"")
    with open(ledger, "a") as handle:
        handle.write(json.dumps({"type": "run", "run_id": "r3", "volumes": [{"id": "7", "shape": ["x"]}],
                                 "submission": {"sha256": sha256_file(zip_path)}}) + "\n")
    checked = _invoke(["validate", str(zip_path)], env)
    assert checked.exit_code == 1 and "checked each entry alone" in checked.output, checked.output


def test_not_ready_refuses_unless_forced(tmp_path: Path, env: dict[str, str]) -> None:
    (tmp_path / "empty").mkdir()  # exists, but holds no volumes: the readiness check's input check fails
    refused = _invoke(["run", "--model", "demo", "--input", str(tmp_path / "empty")], env)
    assert refused.exit_code == 2
    assert "not ready to run" in refused.output and "competition input" in refused.output and "--force" in refused.output
    forced = _invoke(["run", "--model", "demo", "--input", str(tmp_path / "empty"), "--force"], env)
    assert forced.exit_code == 2 and "not ready" not in forced.output and "empty" in forced.output
    missing = _invoke(["run", "--model", "demo", "--input", str(tmp_path / "nowhere")], env)
    assert missing.exit_code == 2 and f"input folder {tmp_path / 'nowhere'} does not exist" in missing.output


def test_run_toml_settings_reach_the_run_and_flags_override_them(tmp_path: Path, env: dict[str, str]) -> None:
    data = _competition(tmp_path / "comp", {"11": SMALL})
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "run.toml").write_text(
        'models = ["demo"]\ninput = "../comp"\noutput = "../out/sub.zip"\n'
        '[post]\nthreshold = 0.6\nhysteresis_low = 0.4\nmin_component_voxels = 50\nfill_holes = "2d"\n'
        "[inference]\nstep_size = 0.75\n"
    )
    result = _invoke(["run", "--config", str(tmp_path / "cfg" / "run.toml"), "--threshold", "0.55", "--json"], env)
    assert result.exit_code == 0, result.output
    assert zipfile.ZipFile(tmp_path / "out" / "sub.zip").namelist() == ["11.tif"]
    (record,) = _ledger(tmp_path / "out" / "offlinepack-runs.jsonl")
    post = record["config"]["post"]
    assert {k: post[k] for k in ("threshold", "hysteresis_low", "min_component_voxels", "fill_holes",
                                 "components_backend")} == {"threshold": 0.55, "hysteresis_low": 0.4,
                                                            "min_component_voxels": 50, "fill_holes": "2d",
                                                            "components_backend": "auto"}
    assert post["threshold_rule"] == "fixed" and post["closing_radius"] == 0  # the topology steps: off
    assert record["config"]["inference"] == {"mirror_axes": [], "step_size": 0.75}
    assert record["input"]["root"] == str(data)


@pytest.mark.gpu
def test_demo_on_cuda_records_the_gpu(tmp_path: Path, env: dict[str, str]) -> None:
    result = _invoke(["run", "--device", "cuda", "--precision", "fp16", "--json"], env)
    assert result.exit_code == 0, result.output
    (record,) = _ledger(tmp_path / "offlinepack-runs.jsonl")
    assert record["environment"]["devices"][0].startswith("cuda") and record["environment"]["gpus"]
    assert record["environment"]["cuda"]
