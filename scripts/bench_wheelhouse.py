#!/usr/bin/env python3
"""Benchmark `offlinepack build` against the naive `pip download` the issue names, in one run.

For the reference requirements and target (default: lockfiles/nnunetv2/ and kaggle-gpu):
  1. naive: `pip download -r requirements.in --python-version 3.12 --platform manylinux_2_35_x86_64 ...
     (every older manylinux tag listed) --only-binary=:all: -d DIR`, no pip cache (cold). When it fails
     (sdist-only dependencies cannot be fetched under --only-binary), the failure is recorded with what
     it left in DIR, and the closest naive command that works is timed too: the same `pip download`
     run by a host Python 3.12 without --platform (it takes sdists; the host is Linux x86_64 as well).
  2. offlinepack cold: `offlinepack build LOCK --target T -o DIR` with an empty cache.
  3. offlinepack warm: the same again with --force and the now-warm cache.
Sizes are the bytes in each output folder. pip's folders are deleted afterwards (several GB) unless --keep.

    .venv/bin/python scripts/bench_wheelhouse.py [--json results.json] [--skip-pip]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from offlinepack.wheelhouse.sdist import find_uv  # noqa: E402
from tests.support.pythons import find_python  # noqa: E402

MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in range(35, 16, -1)] + ["manylinux2014_x86_64"]


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()] if folder.is_dir() else []
    return sum(p.stat().st_size for p in files), len(files)


def timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - started, done


def tail(done: subprocess.CompletedProcess, lines: int = 3) -> str:
    """The lines that say why: pip's conflict explanation when there is one, else the last lines."""
    text = [line.strip() for line in ((done.stderr or "") + (done.stdout or "")).splitlines() if line.strip()]
    why = [line for line in text if "depends on" in line or line.startswith("ERROR: Cannot install")
           or "no matching distribution" in line.lower()]
    return " | ".join(why[:lines] if why else text[-lines:])


def naive_pip(requirements: Path, work: Path, python_version: str) -> dict:
    pip_python = sys.executable
    out = work / "pip-naive"
    command = [pip_python, "-m", "pip", "download", "-r", str(requirements), "--python-version", python_version,
               *[arg for tag in MANYLINUX for arg in ("--platform", tag)], "--only-binary=:all:",
               "-d", str(out), "--no-cache-dir", "--progress-bar", "off", "--disable-pip-version-check"]
    seconds, done = timed(command)
    size, count = folder_size(out)
    result = {"command": " ".join(["pip", *command[3:]]).replace(str(work), "$WORK"), "exit": done.returncode,
              "seconds": seconds, "bytes": size, "files": count, "error": tail(done) if done.returncode else None}
    if done.returncode == 0:
        return {"naive": result}
    fallback = {"error": "no Python 3.12 on this machine"}
    host = find_python(python_version)
    if host is not None:
        out2 = work / "pip-host"
        command = [str(host), "-m", "pip", "download", "-r", str(requirements), "-d", str(out2), "--no-cache-dir",
                   "--progress-bar", "off", "--disable-pip-version-check"]
        seconds, done = timed(command)
        size, count = folder_size(out2)
        fallback = {"command": f"python{python_version} -m pip download -r {requirements.name} -d DIR --no-cache-dir",
                    "exit": done.returncode, "seconds": seconds, "bytes": size, "files": count,
                    "error": tail(done) if done.returncode else None}
    return {"naive": result, "fallback": fallback}


def offlinepack_build(lock: Path, target: str, out: Path, cache: Path, force: bool, uv_cache: Path) -> dict:
    command = [sys.executable, "-m", "offlinepack", "build", str(lock), "--target", target, "-o", str(out),
               "--cache-dir", str(cache), "--dataset-id", "bench/vesuvius-wheels", "--json"]
    if force:
        command.append("--force")
    # a private uv cache: the cold run also fetches the build backends it needs, like a fresh machine
    seconds, done = timed(command, cwd=REPO, env=dict(os.environ, UV_CACHE_DIR=str(uv_cache)))
    if done.returncode != 0:
        return {"exit": done.returncode, "seconds": seconds, "error": tail(done, 8)}
    data = json.loads(done.stdout)
    size, count = folder_size(out)
    return {"exit": 0, "seconds": seconds, "library_seconds": data["seconds"], "bytes": size, "files": count,
            "downloaded": len(data["downloaded"]), "built": data["built"], "largest": data["size"]["largest"],
            "packages": len(data["size"]["packages"])}


def version_of(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True).stdout.strip().splitlines()[0]
    except (OSError, IndexError):
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requirements", type=Path, default=REPO / "lockfiles/nnunetv2/requirements.in")
    parser.add_argument("--lock", type=Path, default=REPO / "lockfiles/nnunetv2/pylock.toml")
    parser.add_argument("--target", default="kaggle-gpu")
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--skip-pip", action="store_true", help="only time offlinepack (no baseline: not a result)")
    parser.add_argument("--keep", action="store_true", help="keep the downloaded folders")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-wheelhouse-", dir=args.work))
    results: dict = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "pip": version_of([sys.executable, "-m", "pip", "--version"]).split(" from ")[0],
        "uv": version_of([find_uv() or "uv", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "requirements": str(args.requirements.relative_to(REPO) if args.requirements.is_relative_to(REPO)
                            else args.requirements),
        "lock": str(args.lock.relative_to(REPO) if args.lock.is_relative_to(REPO) else args.lock),
        "target": args.target,
    }
    try:
        # offlinepack first: its cold build must not profit from anything pip fetched (separate caches anyway)
        cache = work / "offlinepack-cache"
        results["offlinepack_cold"] = offlinepack_build(args.lock, args.target, work / "wheelhouse", cache, False,
                                                        work / "uv-cache")
        warm = [offlinepack_build(args.lock, args.target, work / "wheelhouse", cache, True, work / "uv-cache")
                for _ in range(3)]
        # the median of three: process start-up on a shared 2-core machine is noisy
        results["offlinepack_warm"] = sorted(warm, key=lambda r: r["seconds"])[1]
        results["offlinepack_warm"]["all_seconds"] = [round(r["seconds"], 3) for r in warm]
        if not args.skip_pip:
            results.update(naive_pip(args.requirements, work, args.python_version))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=2))
    cold, warm = results["offlinepack_cold"], results["offlinepack_warm"]
    baselines = [b for b in (results.get("naive"), results.get("fallback")) if b and b.get("bytes")]
    for base in baselines:
        if cold.get("bytes"):
            print(f"\nvs `{base['command']}` (exit {base['exit']}): size 1/{base['bytes'] / cold['bytes']:.0f} "
                  f"(goal 1/50+), cold time {cold['seconds'] / base['seconds']:.2f}x (goal <= 0.5x)")
    if warm.get("seconds") is not None:
        print(f"warm rebuild: {warm['seconds']:.2f} s process, {warm.get('library_seconds', float('nan')):.2f} s "
              "in build_wheelhouse (goal < 1 s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if cold.get("exit") == 0 and warm.get("exit") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
