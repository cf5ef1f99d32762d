"""Test kit for the kernel side: kernel-like venvs, wheelhouses, a /kaggle tree, running bootstrap offline.

A "kernel" is a real `python -m venv` (no system site-packages) with a preinstalled set from tiny
local wheels; one base venv per session is copied per test (a copied venv runs fine through
`venv/bin/python -m ...`), which keeps venv creation to one.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.pythons import find_python
from tests.support.wheels import make_wheel, sha256_of

REPO = Path(__file__).resolve().parent.parent.parent
BOOTSTRAP = REPO / "runtime" / "bootstrap.py"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")


def offline_prefix() -> list[str]:
    """`unshare -rn` (no network at all) where the OS allows it, else skip."""
    try:
        ok = subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        pytest.skip("network namespaces (unshare -rn) are not permitted here")
    return ["unshare", "-rn"]


def make_base_kernel(folder: Path, minor: str = "3.12", preinstalled: tuple[tuple[str, str], ...] = ()) -> Path:
    python = find_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor} interpreter found")
    subprocess.run([str(python), "-m", "venv", str(folder)], check=True, capture_output=True)
    wheels = [make_wheel(folder.parent / "preinstalled-wheels", name, version) for name, version in preinstalled]
    if wheels:
        subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                        "--disable-pip-version-check", *map(str, wheels)], check=True, capture_output=True)
    return folder


def clone_kernel(base: Path, dest: Path) -> Path:
    shutil.copytree(base, dest, symlinks=True)
    return dest


def site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3.*/site-packages"))


def write_wheelhouse(folder: Path, packages: list[dict], provided: list[dict] = (), *, with_bootstrap: bool = True,
                     python_version: str = "3.12.1") -> Path:
    """A contract-3 wheelhouse: flat folder, offlinepack.json; packages = [{"wheel": Path, "optional": bool,
    "extra_files": [Path]}]. Wheels are copied in; sha256 recorded before any test corrupts them."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for pkg in packages:
        files = []
        for wheel in [pkg["wheel"], *pkg.get("extra_files", [])]:
            shutil.copy2(wheel, folder / wheel.name)
            files.append({"path": wheel.name, "sha256": sha256_of(wheel), "size": wheel.stat().st_size})
        name, version = pkg["wheel"].name.split("-")[:2]
        entries.append({"name": pkg.get("name", name), "version": version, "optional": pkg.get("optional", False),
                        "files": files})
    manifest = {"format": "offlinepack-wheelhouse", "version": 1, "created": "2026-11-25T18:00:00Z",
                "offlinepack_version": "0.1.0",
                "target": {"name": "test", "implementation": "cpython", "python_version": python_version, "approximate": False,
                           "tags": []},
                "packages": entries, "provided": list(provided), "lock": "pylock.toml"}
    (folder / "offlinepack.json").write_text(json.dumps(manifest, indent=1))
    if with_bootstrap:
        shutil.copy2(BOOTSTRAP, folder / "bootstrap.py")
    return folder


def make_read_only(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def run_bootstrap(venv: Path, script: Path, *args: str, env: dict | None = None, uv_on_path: bool = True,
                  prefix: list[str] | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """venv's python running `script` (bootstrap.py inside the dataset) with a clean, kernel-like environment."""
    path_dirs = [str(venv / "bin"), "/usr/bin", "/bin"]
    if uv_on_path and UV:
        uv_dir = venv.parent / f"{venv.name}-uvbin"
        uv_dir.mkdir(exist_ok=True)
        if not (uv_dir / "uv").exists():
            (uv_dir / "uv").symlink_to(UV)
        path_dirs.insert(0, str(uv_dir))
    full_env = {"PATH": os.pathsep.join(path_dirs), "HOME": str(venv.parent / "home"), "LANG": "C.UTF-8",
                "PYTHONIOENCODING": "utf-8"}
    full_env.update(env or {})
    cmd = [*(prefix or []), str(venv / "bin" / "python"), str(script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=str(venv.parent))


def report_of(proc: subprocess.CompletedProcess) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from None


def by_name(report: dict) -> dict[str, dict]:
    return {p["name"]: p for p in report["packages"]}


def venv_python(venv: Path, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})
