#!/usr/bin/env python3
"""Benchmark: runtime/bootstrap.py vs `pip install --no-index --find-links DIR -r requirements.txt`.

Into identical fresh kernel-like environments (a Python 3.12 venv with a small preinstalled set),
from the same wheelhouse of real wheels, measured in the same run:
  - cold install: bootstrap (uv on PATH, as in a Kaggle image), bootstrap forced to pip, and the pip baseline
  - no-op second run: bootstrap vs pip's "Requirement already satisfied"

    python scripts/bench_bootstrap.py [--wheels DIR] [--repeat 3] [--markdown]

The wheels are downloaded once (needs the package index) into --wheels, then everything runs offline.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.pythons import find_python  # noqa: E402

# Small and large pure packages plus two compiled ones a Vesuvius kernel lacks: a realistic mix of file counts.
PACKAGES = [
    "attrs", "six", "python-dateutil", "pytz", "tzdata", "pyparsing", "click", "tqdm", "jinja2", "markupsafe",
    "pyyaml", "colorama", "pygments", "markdown-it-py", "mdurl", "filelock", "fsspec", "networkx", "sympy", "mpmath<1.4",
    "idna", "certifi", "charset-normalizer", "urllib3", "requests", "einops", "imagecodecs", "connected-components-3d",
    "rich", "typing-extensions",
]
PREINSTALLED = ["packaging==25.0", "numpy==2.3.5"]  # a kernel's own packages: present, never touched


def download(folder: Path) -> None:
    if any(folder.glob("*.whl")):
        return
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version",
           "3.12", "--implementation", "cp", "--abi", "cp312", "--abi", "abi3", "--abi", "none",
           "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64", "--platform", "any",
           "-d", str(folder), *PACKAGES, *PREINSTALLED]
    subprocess.run(cmd, check=True)


def wheelhouse(wheels: Path, out: Path) -> tuple[Path, Path]:
    """A contract-3 folder (wheels + offlinepack.json + bootstrap.py) and a requirements.txt for pip."""
    out.mkdir(parents=True)
    entries, reqs = [], []
    for wheel in sorted(wheels.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        if any(name.lower() == p.split("==")[0] for p in PREINSTALLED):
            continue
        shutil.copy2(wheel, out / wheel.name)
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        entries.append({"name": name, "version": version, "optional": name == "imagecodecs",
                        "files": [{"path": wheel.name, "sha256": digest, "size": wheel.stat().st_size}]})
        reqs.append(f"{name}=={version}")
    manifest = {"format": "offlinepack-wheelhouse", "version": 1, "created": "bench", "offlinepack_version": "0.1.0",
                "target": {"name": "bench", "implementation": "cpython", "python_version": "3.12", "tags": []},
                "packages": entries, "provided": [{"name": q.split("==")[0], "version": q.split("==")[1]} for q in PREINSTALLED], "lock": "pylock.toml"}
    (out / "offlinepack.json").write_text(json.dumps(manifest))
    shutil.copy2(REPO / "runtime" / "bootstrap.py", out / "bootstrap.py")
    requirements = out.parent / "requirements.txt"
    requirements.write_text("\n".join(reqs) + "\n")
    return out, requirements


def base_venv(python: Path, folder: Path, wheels: Path) -> Path:
    subprocess.run([str(python), "-m", "venv", str(folder)], check=True)
    pre = [str(p) for p in wheels.glob("*.whl") if any(p.name.lower().startswith(q.split("==")[0] + "-") for q in PREINSTALLED)]
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", *pre],
                   check=True)
    return folder


def timed(cmd: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=Path.home() / ".cache" / "offlinepack-bench" / "wheels-py312")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python = find_python("3.12")
    if python is None:
        raise SystemExit("needs a Python 3.12 interpreter")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    download(args.wheels)
    work = Path(tempfile.mkdtemp(prefix="bench-bootstrap-"))
    try:
        house, requirements = wheelhouse(args.wheels, work / "kaggle" / "input" / "wheels")
        n_wheels = len(list(house.glob("*.whl")))
        size = sum(p.stat().st_size for p in house.glob("*.whl"))
        base = base_venv(python, work / "base", args.wheels)
        uv_dir = work / "uvbin"
        uv_dir.mkdir()
        if uv:
            (uv_dir / "uv").symlink_to(uv)
        env_uv = {"PATH": f"{uv_dir}:/usr/bin:/bin", "HOME": str(work / "home"), "OFFLINEPACK_KAGGLE_ROOT": str(work / "kaggle")}
        env_pip = dict(env_uv, PATH="/usr/bin:/bin", OFFLINEPACK_INSTALLER="pip")
        results: dict[str, list[float]] = {k: [] for k in (
            "bootstrap (uv)", "bootstrap (pip, --no-compile)", "pip baseline", "bootstrap no-op", "pip no-op")}
        for i in range(args.repeat):
            for label, env in (("bootstrap (uv)", env_uv), ("bootstrap (pip, --no-compile)", env_pip)):
                venv = work / f"v-{i}-{len(results[label])}-{label[11:14]}"
                shutil.copytree(base, venv, symlinks=True)
                cmd = [str(venv / "bin" / "python"), str(house / "bootstrap.py")]
                env = dict(env, HOME=str(venv) + "-home")  # a fresh kernel: cold uv cache
                results[label].append(timed(cmd, env))
                if label == "bootstrap (uv)":
                    results["bootstrap no-op"].append(timed(cmd, env))
                shutil.rmtree(venv)
            venv = work / f"v-{i}-pip"
            shutil.copytree(base, venv, symlinks=True)
            cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                   "--no-index", "--find-links", str(house), "-r", str(requirements)]
            results["pip baseline"].append(timed(cmd, env_pip))
            results["pip no-op"].append(timed(cmd, env_pip))
            shutil.rmtree(venv)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; kernel Python {python.name} "
          f"({subprocess.run([str(python), '-V'], capture_output=True, text=True).stdout.strip()}); "
          f"uv {subprocess.run([uv, '--version'], capture_output=True, text=True).stdout.split()[1] if uv else 'absent'}")
    print(f"wheelhouse: {n_wheels} real wheels, {size / 2**20:.1f} MiB; median of {args.repeat} runs\n")
    print("| run | seconds (median) | vs pip baseline | goal |")
    print("|---|---|---|---|")
    baseline, noop = med["pip baseline"], med["pip no-op"]
    rows = [("bootstrap (uv)", baseline, "≤ 0.3×"), ("bootstrap (pip, --no-compile)", baseline, "—"),
            ("pip baseline", baseline, "—"), ("bootstrap no-op", noop, "< 0.5 s"), ("pip no-op", noop, "—")]
    for label, ref, goal in rows:
        print(f"| {label} | {med[label]:.2f} | {med[label] / ref:.2f}× | {goal} |")
    print("\nall runs:", json.dumps({k: [round(x, 3) for x in v] for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
