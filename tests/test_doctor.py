"""`offlinepack doctor` through the CLI and run_checks: real wheelhouses, TIFFs, folders; GPU facts as parameters."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from offlinepack.cli.app import app
from offlinepack.doctor import Check, DoctorOptions, GpuFacts, TorchFacts, known_bad, run_checks
from offlinepack.doctor.gpu import cudnn_triplet, gpu_checks
from tests.support.wheels import make_wheel
from tests.support.kernels import write_wheelhouse

REPO = Path(__file__).resolve().parent.parent
NUMPY = importlib.metadata.version("numpy")
T4 = GpuFacts(0, "Tesla T4", 15 * 2**30, (7, 5))
# a Kaggle GPU kernel's facts (2x T4, CUDA 12.8 build, cuDNN 9.11): the torch probe is a parameter
GPU_KERNEL = TorchFacts(True, None, "2.8.0+cu128", "12.8", True, (12, 8), (T4, GpuFacts(1, "Tesla T4", 15 * 2**30, (7, 5))),
                        ("sm_75", "sm_80", "sm_90"), 91100)


def _competition(root: Path) -> Path:
    comp = root / "input" / "competitions" / "vesuvius-challenge-surface-detection"
    (comp / "test_images").mkdir(parents=True)
    (comp / "test.csv").write_text("id,scroll_id\n1407735,26002\n")
    pages = [Image.fromarray(p) for p in np.random.default_rng(1).integers(0, 255, (4, 16, 16), dtype=np.uint8)]
    pages[0].save(comp / "test_images" / "1407735.tif", save_all=True, append_images=pages[1:], compression="tiff_lzw")
    return comp


@pytest.fixture
def kernel_tree(tmp_path) -> Path:
    """/kaggle with the competition and a wheelhouse whose numpy is satisfied, `zzmissing` not installed yet,
    and a provided package at another version than this environment's."""
    root = tmp_path / "kaggle"
    (root / "working").mkdir(parents=True)
    _competition(root)
    src = tmp_path / "src"
    write_wheelhouse(root / "input" / "datasets" / "me" / "wheels", [
        {"wheel": make_wheel(src, "numpy", NUMPY)},
        {"wheel": make_wheel(src, "zzmissing", "1.0")},
    ], provided=[{"name": "scipy", "version": "0.0.1"}], python_version=platform.python_version())
    return root


def test_cli_reports_every_check_with_fixes_and_exit_2(kernel_tree):
    result = CliRunner().invoke(app, ["doctor", "--kaggle-root", str(kernel_tree), "--output-dir", str(kernel_tree / "working")])
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert any(l.startswith("✗ package zzmissing:") for l in lines)
    assert "bootstrap.py" in lines[lines.index(next(l for l in lines if l.startswith("✗ package zzmissing"))) + 1]
    assert any(l.startswith("! package scipy:") and "0.0.1" in l for l in lines)
    assert any(l.startswith("✓ wheelhouse:") and "offlinepack.json, 2 wheels" in l for l in lines)
    # the checks after the failure still ran
    assert any(l.startswith("✓ competition input:") and "(4, 16, 16) uint8" in l for l in lines)
    assert any(l.startswith("✓ output folder:") for l in lines)
    assert any(l.startswith("✓ tiff readers:") for l in lines)
    assert lines[-1] == "not ready (exit 2)"


def test_cli_json(kernel_tree):
    result = CliRunner().invoke(app, ["doctor", "--json", "--kaggle-root", str(kernel_tree), "--output-dir",
                                      str(kernel_tree / "working")])
    data = json.loads(result.output)
    assert data["exit_code"] == result.exit_code == 2
    by_name = {c["name"]: c for c in data["checks"]}
    assert by_name["package zzmissing"]["status"] == "fail" and "package numpy" not in by_name
    assert by_name["packages"]["status"] == "fail" and "1 satisfied" in by_name["packages"]["detail"]
    assert set(by_name["torch"]) == {"name", "status", "detail", "fix"}


def test_ready_kernel_with_gpus_exits_0(tmp_path):
    root = tmp_path / "kaggle"
    (root / "working").mkdir(parents=True)
    _competition(root)
    write_wheelhouse(root / "input" / "wheels", [{"wheel": make_wheel(tmp_path / "src", "numpy", NUMPY)}],
                     python_version=platform.python_version())
    report = run_checks(DoctorOptions(output_dir=root / "working", kaggle_root=root), torch_probe=lambda: GPU_KERNEL)
    assert report.exit_code == 0, [c for c in report.checks if c.status != "ok"]
    gpus = [c for c in report.checks if c.name.startswith("gpu ")]
    assert [c.detail for c in gpus] == ["Tesla T4, 15.0 GiB, sm_75; no native bf16, fp16 is used"] * 2


def test_wheelhouse_for_another_python_and_interrupted_install_fail(tmp_path):
    root = tmp_path / "kaggle"
    house = write_wheelhouse(root / "input" / "wheels", [{"wheel": make_wheel(tmp_path / "src", "numpy", NUMPY)}])
    manifest = json.loads((house / "offlinepack.json").read_text())
    manifest["target"]["python_version"] = "3.9.18"
    (house / "offlinepack.json").write_text(json.dumps(manifest))
    site = root / "working" / ".offlinepack-site"
    site.mkdir(parents=True)
    (site / ".offlinepack-journal.json").write_text('{"created": []}')
    report = run_checks(DoctorOptions(output_dir=root / "working", kaggle_root=root), torch_probe=lambda: GPU_KERNEL)
    by_name = {c.name: c for c in report.checks}
    assert by_name["python"].status == "fail" and "built for Python 3.9.18" in by_name["python"].detail
    assert by_name["install state"].status == "fail" and by_name["install state"].fix
    # in a kernel (input/ exists) with no competition attached: a failure, not a warning
    assert by_name["competition input"].status == "fail"
    assert report.exit_code == 2


def test_unwritable_output_folder_fails(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    report = run_checks(DoctorOptions(output_dir=blocker / "out", kaggle_root=tmp_path / "none"),
                        torch_probe=lambda: GPU_KERNEL)
    check = next(c for c in report.checks if c.name == "output folder")
    assert check.status == "fail" and "not writable" in check.detail and check.fix


def test_known_bad_combinations():
    assert [c.name for c in known_bad("2.9.1+cu128", 91300)] == ["torch 2.9 conv3d"]
    assert [c.name for c in known_bad("2.11.0", 91002)] == ["cudnn bf16 conv3d"]
    assert "9.8.0" in known_bad("2.11.0", 90800)[0].detail
    assert known_bad("2.11.0", 91100) == [] and known_bad("2.10.0", 90700) == [] and known_bad(None, None) == []
    assert cudnn_triplet(8907) == (8, 9, 7) and cudnn_triplet(91002) == (9, 10, 2)


def test_gpu_checks_flag_old_gpus_old_drivers_and_missing_cuda():
    p100 = TorchFacts(True, None, "2.11.0", "12.8", True, (12, 8), (GpuFacts(0, "Tesla P100", 16 * 2**30, (6, 0)),),
                      ("sm_70", "sm_75", "sm_80"), 91900)
    assert next(c for c in gpu_checks(p100, False) if c.name == "gpu 0").status == "fail"
    old_driver = TorchFacts(True, None, "2.11.0", "13.0", False, (12, 4))
    names = {c.name: c for c in gpu_checks(old_driver, True)}
    assert names["cuda driver"].status == "fail" and names["cuda"].status == "fail"
    assert {c.status for c in gpu_checks(TorchFacts(True, None, "2.13.0+cpu"), False)} == {"ok", "warn"}
    assert gpu_checks(TorchFacts(False, error="ImportError: libcudart.so.12"), False) == [
        Check("torch", "fail", "torch does not import: ImportError: libcudart.so.12",
              "Kaggle kernels ship torch: do not reinstall it; elsewhere `pip install torch`")]


def test_without_imagecodecs_doctor_warns_and_reads_lzw_with_pillow(tmp_path):
    root = tmp_path / "kaggle"
    _competition(root)
    code = ("import sys, json; sys.modules['imagecodecs'] = None\n"
            "from pathlib import Path\nfrom offlinepack.doctor import run_checks, DoctorOptions, TorchFacts\n"
            f"r = run_checks(DoctorOptions(output_dir=Path({str(tmp_path)!r}), kaggle_root=Path({str(root)!r})),"
            " torch_probe=lambda: TorchFacts(True, None, '2.13.0+cpu'))\n"
            "print(json.dumps(r.to_dict()))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert checks["tiff readers"]["status"] == "warn" and "Pillow" in checks["tiff readers"]["detail"]
    assert "via pillow" in checks["competition input"]["detail"]
    assert checks["tiff readers"]["fix"]


def test_cli_wheels_option_reads_bare_wheel_folders_and_flags_bad_paths(tmp_path):
    bare = tmp_path / "bare"
    make_wheel(bare, "zz-top", "1.0")
    result = CliRunner().invoke(app, ["doctor", "--kaggle-root", str(tmp_path / "none"), "--output-dir", str(tmp_path),
                                      "--wheels", str(bare), "--wheels", str(tmp_path / "nope")])
    lines = result.output.splitlines()
    assert any(l.startswith("! wheelhouse:") and "no manifest, 1 wheels" in l and "nope: no wheels there" in l for l in lines)
    assert any(l.startswith("✗ package zz-top: missing") for l in lines)
    assert result.exit_code == 2


@pytest.mark.gpu
def test_real_gpu_probe(tmp_path):
    """On a CUDA machine: the real torch probe sees every GPU, cuDNN and the driver (skipped without CUDA)."""
    from offlinepack.doctor import probe_torch

    facts = probe_torch()
    assert facts.importable and facts.cuda_available and facts.gpus and facts.cudnn_version
    checks = {c.name: c for c in gpu_checks(facts, require_gpu=True)}
    assert checks["cuda"].status == "ok" and checks["cudnn"].status == "ok"
    assert all(f"gpu {g.index}" in checks and g.name in checks[f"gpu {g.index}"].detail for g in facts.gpus)
    report = run_checks(DoctorOptions(output_dir=tmp_path, kaggle_root=tmp_path / "none", require_gpu=True))
    assert not [c for c in report.checks if c.name in ("torch", "cuda") and c.status != "ok"]


def test_cli_output_check_defaults_to_where_run_writes(tmp_path, monkeypatch):
    """Outside a kernel `offlinepack run` writes ./submission.zip: the doctor checks the current folder, not
    /kaggle/working (which a non-root user cannot create: "not ready" on every laptop). In a kernel (or a
    Kaggle root given by --kaggle-root / OFFLINEPACK_KAGGLE_ROOT) it checks that root's working/."""
    monkeypatch.chdir(tmp_path)
    laptop = CliRunner().invoke(app, ["doctor", "--json", "--kaggle-root", str(tmp_path / "none")])
    checks = {c["name"]: c for c in json.loads(laptop.stdout)["checks"]}
    assert checks["output folder"]["detail"].startswith(f"{tmp_path} writable"), checks["output folder"]
    kernel = tmp_path / "kaggle"
    (kernel / "working").mkdir(parents=True)
    inside = CliRunner().invoke(app, ["doctor", "--json"], env={"OFFLINEPACK_KAGGLE_ROOT": str(kernel)})
    checks = {c["name"]: c for c in json.loads(inside.stdout)["checks"]}
    assert checks["output folder"]["detail"].startswith(f"{kernel / 'working'} writable"), checks["output folder"]


def test_require_gpu_fails_without_a_usable_cuda_device(tmp_path):
    """--require-gpu: no CUDA, or CUDA that cannot run a kernel, is a failure (exit 2); without it, a warning."""
    from dataclasses import replace

    cpu_build = TorchFacts(True, None, "2.13.0+cpu")
    assert {c.name: c.status for c in gpu_checks(cpu_build, require_gpu=True)}["cuda"] == "fail"
    assert {c.name: c.status for c in gpu_checks(cpu_build, require_gpu=False)}["cuda"] == "warn"
    broken = replace(GPU_KERNEL, cuda_error="RuntimeError: CUDA error: no kernel image is available for execution")
    cuda = {c.name: c for c in gpu_checks(broken, require_gpu=True)}["cuda"]
    assert cuda.status == "fail" and "a small computation on GPU 0 failed: RuntimeError: CUDA error: no kernel" in cuda.detail
    assert {c.name: c for c in gpu_checks(broken, require_gpu=False)}["cuda"].status == "warn"
    assert {c.name: c for c in gpu_checks(GPU_KERNEL, require_gpu=True)}["cuda"].status == "ok"
    if not __import__("torch").cuda.is_available():  # the real probe and CLI on this CPU machine
        result = CliRunner().invoke(app, ["doctor", "--require-gpu", "--json", "--kaggle-root", str(tmp_path / "none"),
                                          "--output-dir", str(tmp_path)])
        checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
        assert result.exit_code == 2 and checks["cuda"]["status"] == "fail"


def test_a_damaged_manifest_fails_with_each_problem_and_its_field_path(tmp_path):
    """kernel.WheelDataset.problems carries bootstrap's per-field problems into doctor's wheelhouse line."""
    root = tmp_path / "kaggle"
    house = write_wheelhouse(root / "input" / "wheels", [{"wheel": make_wheel(tmp_path / "src", "numpy", NUMPY)}])
    manifest = json.loads((house / "offlinepack.json").read_text())
    manifest["target"]["tags"] = [5]
    manifest["packages"][0]["name"] = 7
    (house / "offlinepack.json").write_text(json.dumps(manifest))
    report = run_checks(DoctorOptions(output_dir=root / "working", kaggle_root=root), torch_probe=lambda: GPU_KERNEL)
    [wheelhouse] = [c for c in report.checks if c.name == "wheelhouse"]
    assert wheelhouse.status == "fail"
    assert "target.tags[0]: expected a string" in wheelhouse.detail, wheelhouse.detail
    assert "packages[0].name: expected a string" in wheelhouse.detail, wheelhouse.detail


def test_package_statuses_are_explained_beside_their_counts(tmp_path):
    """`1 provided-missing` alone says nothing: the packages line says what each non-obvious status means."""
    root = tmp_path / "kaggle"
    (root / "working").mkdir(parents=True)
    write_wheelhouse(root / "input" / "wheels", [{"wheel": make_wheel(tmp_path / "src", "numpy", NUMPY)}],
                     provided=[{"name": "zzprovided", "version": "1.0"}], python_version=platform.python_version())
    result = CliRunner().invoke(app, ["doctor", "--kaggle-root", str(root), "--output-dir", str(root / "working")])
    line = next(l for l in result.stdout.splitlines() if l.startswith("✗ packages:"))
    assert "1 provided-missing" in line and "1 satisfied" in line
    assert "provided-missing = left to the kernel image (not in the wheelhouse), but the kernel does not have it" in line
    assert any(l.startswith("✗ package zzprovided:") for l in result.stdout.splitlines())
