#!/usr/bin/env python3
"""Benchmark: CLI start-up, `offlinepack --version | targets | --help` beside `pip --version`, same run.

Each command runs `--repeat` times (default 10) as a fresh process, output discarded; the table shows the
median and the fastest run in seconds. With `--before REF` the same commands also run from the package as it
was at git ref REF (extracted with `git archive` to a temporary folder, run by the same interpreter), so a
change is measured against its baseline on the same machine at the same load.

    .venv/bin/python scripts/bench_startup.py [--repeat 10] [--before REF] [--markdown]

Goal (issue 14): `offlinepack --version` and `offlinepack targets` <= 0.25 s (median of 10).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMMANDS = (["--version"], ["targets"], ["--help"])
GOAL_S = 0.25


def _seconds(argv: list[str], repeat: int, env: dict[str, str]) -> list[float]:
    # once untimed and checked: a command that fails at import would otherwise be timed as "fast"
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - start)
    return times


def _from_source(root: Path) -> list[str]:
    """offlinepack imported from `root` (first on sys.path), started the way the console script starts it."""
    code = f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv[0] = 'offlinepack'; " \
           "from offlinepack.cli.app import main; sys.exit(main())"
    return [sys.executable, "-c", code]


def _extract(ref: str, into: Path) -> Path:
    archive = into / "src.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(REPO), "archive", ref, "offlinepack"], stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--before", metavar="REF", help="also time the package as it was at this git ref")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for BENCHMARKS.md")
    args = parser.parse_args()
    env = dict(os.environ, COLUMNS="80")
    entry = Path(sys.executable).with_name("offlinepack")
    rows: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        variants = [("installed entry point", [str(entry)] if entry.exists() else _from_source(REPO)),
                    ("this checkout", _from_source(REPO))]
        if args.before:
            variants.append((f"before ({args.before})", _from_source(_extract(args.before, Path(tmp)))))
        rows.append(("pip --version", "baseline", _seconds([sys.executable, "-m", "pip", "--version"], args.repeat, env)))
        for command in COMMANDS:
            for label, prefix in variants:
                rows.append((f"offlinepack {' '.join(command)}", label, _seconds(prefix + command, args.repeat, env)))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}, load {load:.1f}; "
          f"Python {platform.python_version()}; median of {args.repeat} runs")
    if args.markdown:
        print("\n| command | code | median s | fastest s | goal |\n|---|---|---|---|---|")
    for command, label, times in rows:
        median = statistics.median(times)
        goal = ("met" if median <= GOAL_S else "**not met**") if command.split()[1:2] in (["--version"], ["targets"]) \
            and label != "baseline" and not label.startswith("before") else ""
        if args.markdown:
            print(f"| `{command}` | {label} | {median:.3f} | {min(times):.3f} | {goal} |")
        else:
            print(f"{command:24} {label:28} median {median:.3f} s  fastest {min(times):.3f} s  {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
