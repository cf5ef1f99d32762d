"""The full loop: snapshot a kernel with bootstrap.py, build a wheelhouse for it with `offlinepack.wheelhouse`,
attach it read-only like /kaggle/input, and let the wheelhouse's own bootstrap.py install it with no network."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from offlinepack.kernel_target import load_target_file
from offlinepack.wheelhouse import BuildOptions, build_wheelhouse
from offlinepack.wheelhouse.selfwheel import offlinepack_wheel
from tests.support.wheels import make_wheel, sha256_of
from tests.support.kernels import (
    BOOTSTRAP, by_name, make_base_kernel, make_read_only, make_writable, offline_prefix, report_of, run_bootstrap,
    site_packages,
)


def _lock(path: Path, index_url: str, wheels: dict[str, Path], provided: dict[str, str]) -> Path:
    files = index_url.replace("/simple/", "/files/")
    lines = ['lock-version = "1.0"', 'created-by = "tests"', 'requires-python = ">=3.10"']
    for name, wheel in wheels.items():
        version = wheel.name.split("-")[1]
        lines += ["", "[[packages]]", f'name = "{name}"', f'version = "{version}"',
                  f'wheels = [{{url = "{files}{wheel.name}", hashes = {{sha256 = "{sha256_of(wheel)}"}}}}]']
    lines += ["", "[tool.offlinepack]", 'target = "kernel"', 'optional = ["imagecodecs"]',
              "provided = [" + ", ".join(f'{{name = "{n}", version = "{v}"}}' for n, v in provided.items()) + "]"]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_wheelhouse_built_by_offlinepack_installs_offline_into_the_kernel(tmp_path, local_index):
    offline = offline_prefix()
    # offlinepack's own dependencies are in the kernel (as on Kaggle): bootstrap checks they are before "ready"
    kernel = make_base_kernel(tmp_path / "kernel", "3.12",
                              (("alpha", "1.0"), ("packaging", "25.0"), ("typer", "0.12.0"), ("rich", "13.0")))
    snapshot = tmp_path / "kernel.json"
    subprocess.run([str(kernel / "bin" / "python"), str(BOOTSTRAP), "snapshot", "-o", str(snapshot), "--name", "kernel"],
                   check=True, capture_output=True)
    target = load_target_file(snapshot)
    assert any(d.name == "alpha" for d in target.installed)

    wheels = {"beta": make_wheel(local_index.root, "beta", "1.0"),
              "imagecodecs": make_wheel(local_index.root, "imagecodecs", "2025.8.2", tag="cp312-cp312-manylinux_2_28_x86_64")}
    lock = _lock(tmp_path / "pylock.toml", local_index.url, wheels, {"alpha": "1.0"})
    out = tmp_path / "kaggle" / "input" / "datasets" / "me" / "vesuvius-wheels"
    out.parent.mkdir(parents=True)
    build_wheelhouse(BuildOptions(lock=lock, target=target, output=out, cache_dir=tmp_path / "cache",
                                  self_wheel=offlinepack_wheel(tmp_path / "self").path, dataset_id="me/vesuvius-wheels",
                                  environ={}))
    assert (out / "bootstrap.py").read_bytes() == BOOTSTRAP.read_bytes()
    make_read_only(tmp_path / "kaggle" / "input")
    try:
        proc = run_bootstrap(kernel, out / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"), "--json",
                             prefix=offline)
        report = report_of(proc)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        packages = by_name(report)
        assert packages["beta"]["status"] == packages["imagecodecs"]["status"] == packages["offlinepack"]["status"] == "installed"
        assert packages["alpha"]["status"] == "provided"
        assert packages["imagecodecs"]["optional"] is True
        site = site_packages(kernel)
        assert (site / "offlinepack" / "runtime" / "bootstrap.py").is_file()
        again = report_of(run_bootstrap(kernel, out / "bootstrap.py", "--kaggle-root", str(tmp_path / "kaggle"),
                                        "--json", prefix=offline))
        assert again["install"] is None and again["exit_code"] == 0
    finally:
        make_writable(tmp_path / "kaggle" / "input")
