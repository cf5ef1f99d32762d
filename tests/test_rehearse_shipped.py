"""The rehearsal's shipped-wheel check (kernel_kit/shipped_wheel.py): the probe, run by a real Python with the
checkout as its working folder, finds the checkout's offlinepack (as `python -m offlinepack` from the repo root
would) and the check fails; from the real wheel installed (unpacked, as bootstrap installs a pure wheel) it passes,
and an installed file that differs from the wheel's RECORD fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from offlinepack.kernel_kit.shipped_wheel import PROBE, check_shipped_offlinepack, probe_cell, shipped_wheel
from offlinepack.wheelhouse.cache import default_cache_dir
from offlinepack.wheelhouse.selfwheel import offlinepack_wheel

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel() -> Path:
    return offlinepack_wheel(default_cache_dir()).path


def _probe(tmp_path: Path, cwd: Path, pythonpath: Path | None) -> dict:
    report = tmp_path / "probe.json"
    env = {"PATH": "/usr/bin:/bin", **({"PYTHONPATH": str(pythonpath)} if pythonpath else {})}
    # the interpreter without this environment's site-packages (where the checkout is installed editable)
    subprocess.run([sys.executable, "-S", "-c", PROBE, str(report)], cwd=cwd, env=env, check=True)
    return json.loads(report.read_text())


def _installed(tmp_path: Path, wheel: Path) -> Path:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_checkout_as_working_folder_is_detected(tmp_path, wheel):
    site = _installed(tmp_path, wheel)
    # the installed wheel is on the path, but `python` run from the checkout imports the checkout's copy first
    probe = _probe(tmp_path, REPO, site)
    assert probe["package"] == str(REPO / "offlinepack")
    check = check_shipped_offlinepack(probe, wheel)
    assert check.status == "fail", check
    assert f"imported offlinepack from {REPO / 'offlinepack'}, which is not an installed distribution" in check.detail
    assert f"working folder {REPO}" in check.detail and "checkout" in check.fix


def test_the_installed_wheel_passes_and_a_changed_file_fails(tmp_path, wheel):
    site = _installed(tmp_path, wheel)
    working = tmp_path / "working"
    working.mkdir()
    check = check_shipped_offlinepack(_probe(tmp_path, working, site), wheel)
    assert check.status == "ok" and check.detail.startswith(f"imported from {site / 'offlinepack'}: ")
    with open(site / "offlinepack" / "errors.py", "a") as handle:
        handle.write("\n# patched in the kernel\n")
    (site / "offlinepack" / "stray.py").write_text("")
    check = check_shipped_offlinepack(_probe(tmp_path, working, site), wheel)
    assert check.status == "fail"
    assert "2 file(s) differ" in check.detail and "offlinepack/errors.py (differs)" in check.detail
    assert "offlinepack/stray.py (not in the wheel)" in check.detail


def test_not_importable_and_no_report(tmp_path, wheel):
    probe = _probe(tmp_path, tmp_path, None)
    check = check_shipped_offlinepack(probe, wheel)
    assert check.status == "fail" and "offlinepack does not import in the kernel" in check.detail
    assert "ModuleNotFoundError" in check.detail
    assert check_shipped_offlinepack(None, wheel).status == "fail"


def test_the_probe_cell_runs_in_a_kernel_like_python(tmp_path, wheel):
    """The code the replay executes in the Jupyter kernel: a child Python of the kernel's, in its folder."""
    site = _installed(tmp_path, wheel)
    report = tmp_path / "out" / "probe.json"
    report.parent.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site)}
    subprocess.run([sys.executable, "-S", "-c", probe_cell(report)], cwd=tmp_path, env=env, check=True)
    assert json.loads(report.read_text())["dist_info"] == [n for n in os.listdir(site) if n.endswith(".dist-info")]
    assert shipped_wheel(wheel.parent) == wheel and shipped_wheel(tmp_path / "none") is None


def test_the_newest_offlinepack_wheel_is_the_shipped_one_by_version_not_file_name(tmp_path):
    # file-name order puts 0.10.0 before 0.9.0; bootstrap installs the newest version
    for version in ("0.9.0", "0.10.0", "0.2.1"):
        (tmp_path / f"offlinepack-{version}-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "offlinepack-notawheel.whl").write_bytes(b"")
    assert shipped_wheel(tmp_path) == tmp_path / "offlinepack-0.10.0-py3-none-any.whl"
    assert shipped_wheel(tmp_path / "missing") is None
    assert shipped_wheel(None) is None
