"""scripts/gpu_check.py --smoke: the GPU proof's every step, for real, on CPU with tiny sizes.

One smoke run (about a minute here) is shared by the tests below. Without a GPU the doctor step
(`--require-gpu`) fails, as it must, which also shows that a failing step does not stop the rest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_check.py"
STEPS = ["snapshot", "install", "doctor", "model", "nnunetv2", "offlinepack", "offlinepack-eager", "run",
         "offlinepack-cap15", "pytest-gpu"]


def _gpu_check(out: Path, work: Path, *args: str, timeout: int = 170) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--work", str(work), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO_ROOT))
    return proc, json.loads((out / "gpu-check.json").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    root = tmp_path_factory.mktemp("gpu-check")
    proc, data = _gpu_check(root / "out", root / "work", "--smoke")
    return proc, data, root / "out"


def test_smoke_runs_every_step_with_a_status_and_figures(smoke):
    proc, data, out = smoke
    steps = {s["name"]: s for s in data["steps"]}
    assert list(steps) == STEPS, proc.stderr[-2000:]
    for name, step in steps.items():
        assert step["status"] in ("ok", "failed", "skipped") and step["seconds"] >= 0, step
        assert isinstance(step["figures"], dict) and step["figures"], f"{name} has no figures: {step}"
    assert data["smoke"] is True and data["machine"]["python"] and data["wall_seconds"] < 120
    assert {n for n, s in steps.items() if s["status"] != "ok"} == {"doctor"}, {n: s.get("error") for n, s in steps.items()}
    table = (out / "gpu-check.txt").read_text()
    assert all(name in table for name in STEPS) and "goals:" in table


def test_a_failing_step_does_not_stop_the_rest(smoke):
    """No CUDA here: `doctor --require-gpu` fails (exit 2, the cuda check) and every later step still runs."""
    proc, data, _ = smoke
    steps = {s["name"]: s for s in data["steps"]}
    doctor = steps["doctor"]
    assert doctor["status"] == "failed" and doctor["figures"]["exit_code"] == 2
    assert "cuda" in doctor["figures"]["failed_checks"] and "not ready" in doctor["error"]
    assert all(steps[name]["status"] == "ok" for name in STEPS[STEPS.index("doctor") + 1:])
    assert proc.returncode == 1  # something failed: the script says so


def test_smoke_figures_are_real(smoke):
    _, data, _ = smoke
    steps = {s["name"]: s["figures"] for s in data["steps"]}
    assert steps["snapshot"]["fixture_distributions"] == 197 and steps["snapshot"]["distributions"] > 0
    assert steps["install"]["exit_code"] == 0 and steps["install"]["installed"] == ["gpu_check_probe 1.0"]
    assert steps["model"]["forward_tflop"] > 0 and steps["model"]["forward_passes"] == 8  # one tile x 8 flips
    for name in ("offlinepack", "offlinepack-eager", "offlinepack-cap15"):
        figures = steps[name]
        assert figures["sec_per_volume"] > 0 and figures["mask_agreement"] >= 0.999, (name, figures)
        assert figures["speedup_vs_nnunetv2"] > 0 and figures["compile"]["enabled"] is False
    assert steps["offlinepack"]["compile"]["requested"] == "auto"
    assert steps["offlinepack-eager"]["compile"]["requested"] is False
    assert steps["nnunetv2"]["sec_per_volume"] > 0 and steps["nnunetv2"]["nnunetv2"]
    run = steps["run"]
    assert run["exit_code"] == 0 and run["volumes"] == 2
    assert set(run["stage_seconds_summed"]) >= {"read", "inference", "post", "write"}
    assert 0 <= run["non_inference_share"] <= 1
    assert steps["pytest-gpu"]["exit_code"] == 0 and steps["pytest-gpu"]["skipped"] >= 1  # no CUDA: skipped cleanly


def test_out_of_budget_steps_are_recorded_as_skipped(tmp_path):
    """Eight steps of torch processes cannot fit 12 s: what is left is recorded, not silently dropped."""
    proc, data = _gpu_check(tmp_path / "out", tmp_path / "work", "--smoke", "--budget", "12", "--steps",
                            "snapshot,install,model,nnunetv2,offlinepack,offlinepack-eager,run,offlinepack-cap15", timeout=90)
    steps = {s["name"]: s for s in data["steps"]}
    assert steps["snapshot"]["status"] == "ok"
    assert any(s["status"] in ("skipped", "failed") for s in steps.values()), steps
    for step in steps.values():
        if step["status"] == "skipped":
            assert step["error"] == "out of the 12 s budget"
        elif step["status"] == "failed":
            assert "timed out after" in step["error"] or "no model folder" in step["error"], step
    assert [s["name"] for s in data["steps"]] == ["snapshot", "install", "model", "nnunetv2", "offlinepack",
                                                  "offlinepack-eager", "run", "offlinepack-cap15"]
    assert proc.returncode == 1


def test_a_kill_mid_run_keeps_the_figures_of_the_finished_steps(tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "out"
    child = subprocess.Popen([sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--work", str(tmp_path / "work"),
                              "--steps", "snapshot,install,model,nnunetv2"], cwd=str(REPO_ROOT), start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            report = out / "gpu-check.json"
            if report.is_file() and len(json.loads(report.read_text())["steps"]) >= 2:
                break
            time.sleep(0.2)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # the script and the step it was running
        child.wait()
    data = json.loads((out / "gpu-check.json").read_text())
    assert [s["name"] for s in data["steps"]][:2] == ["snapshot", "install"]
    assert all(s["status"] == "ok" and s["figures"] for s in data["steps"][:2])
    assert "install" in (out / "gpu-check.txt").read_text()
