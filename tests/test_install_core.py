"""`pip install offlinepack` alone gives a working `lock` and `build`: uv is a core dependency.

The wheel is offlinepack's real one (the build path `offlinepack build` uses). The fresh venv gets it with
pip from a folder holding only it and its core dependencies (repacked from this environment: no index, no
network), so pip itself resolves `Requires-Dist` and must find uv there. That venv then locks and builds
against the tests' local index, with no numpy, no torch, no `[lock]` extra.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from offlinepack.kernel_target import dump_target
from offlinepack.wheelhouse.selfwheel import offlinepack_wheel
from tests.support.locks import make_target
from tests.support.repack import dependency_closure, repack
from tests.support.wheels import make_wheel


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return offlinepack_wheel(tmp_path_factory.mktemp("self-cache")).path


def core_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        headers = HeaderParser().parsestr(archive.read(name).decode())
    return [r for r in headers.get_all("Requires-Dist") or [] if "extra ==" not in r]


def test_the_wheel_requires_uv_without_an_extra(built_wheel):
    core = {Requirement(r).name: r for r in core_requirements(built_wheel)}
    assert "uv" in core and Requirement(core["uv"]).marker is None
    assert not {"torch", "numpy"} & set(core)  # the run side stays in the [run] extra (and the kernel's torch)


def test_a_fresh_venv_with_only_the_core_dependencies_locks_and_builds(built_wheel, tmp_path, local_index):
    wheels = tmp_path / "wheels"
    for name in dependency_closure(core_requirements(built_wheel)):
        repack(name, wheels)
    assert any(p.name.startswith("uv-") for p in wheels.iterdir())
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python, bin_dir = env_dir / "bin" / "python", env_dir / "bin"
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON", "OFFLINEPACK_"))}
    environ["PATH"] = f"{bin_dir}{os.pathsep}/usr/bin:/bin"  # no dev venv, no uv on PATH but the venv's
    environ["PIP_CONFIG_FILE"] = os.devnull
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-index", "--find-links", wheels,
                                built_wheel], capture_output=True, text=True, env=environ, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            env=environ, check=True)
    have = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert {"offlinepack", "uv", "typer", "rich", "packaging"} <= have and not {"numpy", "torch"} & have

    make_wheel(local_index.root, "tool", "1.0", requires=["helper>=1"])
    make_wheel(local_index.root, "helper", "1.2")
    (tmp_path / "r.in").write_text("tool\n")
    dump_target(make_target(), tmp_path / "kernel.json")
    offlinepack = str(bin_dir / "offlinepack")  # cwd is not the checkout: the installed wheel runs
    locked = subprocess.run([offlinepack, "lock", "r.in", "--target", "kernel.json", "-o", "pylock.toml",
                             "--index-url", local_index.url, "--cache-dir", "uv-cache", "--json"],
                            capture_output=True, text=True, env=environ, cwd=tmp_path)
    assert locked.returncode == 0, locked.stderr
    assert {p["name"] for p in json.loads(locked.stdout)["packages"]} == {"tool", "helper"}
    built = subprocess.run([offlinepack, "build", "pylock.toml", "--target", "kernel.json", "-o", "out",
                            "--dataset-id", "me/tool-wheels", "--cache-dir", "cache"],
                           capture_output=True, text=True, env=environ, cwd=tmp_path)
    assert built.returncode == 0, built.stderr + built.stdout
    out = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"tool-1.0-py3-none-any.whl", "helper-1.2-py3-none-any.whl", "bootstrap.py", "offlinepack.json"} <= out
    assert any(name.startswith("offlinepack-") and name.endswith(".whl") for name in out)
    assert sys.prefix not in locked.stderr  # nothing ran from the dev environment
