#!/usr/bin/env python3
"""How much a kernel lock ships, against the naive `pip download` of the same requirements, per target.

For each requirement set (lockfiles/vesuvius: what `offlinepack run` needs; lockfiles/nnunetv2: nnunetv2's own
predictor, the reference) with and without imagecodecs, and each target (default: the built-in kaggle-gpu and
the captured offline CUDA image tests/data/fixtures/gpu-kernel, a copy of the shared fixture):

- lock: `offlinepack lock` for the target (its installed versions held, standard-library back-ports dropped),
  then the files `offlinepack build` would ship (the best wheel per package for the target's tags, else the sdist);
- naive: what `pip download -r requirements.in` would fetch for the target's Python and platform with nothing
  held: one `uv pip compile --python-platform ... --python-version ...` resolution (torch, its CUDA wheels,
  triton, numpy... all come back in), then per package the file pip would pick, same rule.

Nothing is downloaded: every size is the file's "size" from the index's JSON simple API (PEP 691), one
project page per package; the lock's own recorded size is only a fallback (counted in `size_fallbacks`).

    .venv/bin/python scripts/bench_lock_size.py [--json FILE] [--target T ...] [--index-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from packaging.tags import parse_tag  # noqa: E402
from packaging.utils import canonicalize_name, parse_wheel_filename  # noqa: E402

import offlinepack  # noqa: E402
from offlinepack.kernel_target import Target, resolve_target  # noqa: E402
from offlinepack.lock import LockOptions, lock_requirements  # noqa: E402
from offlinepack.lock import engine  # noqa: E402
from offlinepack.lock.writer import select_files  # noqa: E402
from offlinepack.pylock import read_lock  # noqa: E402
from offlinepack.wheelhouse.index import INDEX_ENV, default_index_urls  # noqa: E402
from offlinepack.wheelhouse.select import plan_files  # noqa: E402

SETS = ("vesuvius", "nnunetv2")
TARGETS = ("kaggle-gpu", "tests/data/fixtures/gpu-kernel")
OPTIONAL = "imagecodecs"
MIB = 2 ** 20
# the goals for the run lock (lockfiles/vesuvius): ratio naive / lock
GOALS = {("vesuvius", True): 100, ("vesuvius", False): 300}


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    lock: str  # "vesuvius" or "vesuvius -imagecodecs"
    target: str
    files: int
    bytes: int
    naive_files: int
    naive_bytes: int
    ratio: float  # naive / lock
    goal: int | None  # the lock must be <= 1/goal of naive
    size_fallbacks: int  # files whose size did not come from the JSON API
    naive_largest: tuple[tuple[str, int], ...]  # the five largest naive files


class JsonSizes:
    """File name -> size from PEP 691 project pages (`Accept: application/vnd.pypi.simple.v1+json`), cached."""

    def __init__(self, index_url: str) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.pages: dict[str, dict[str, int]] = {}

    def _page(self, project: str) -> dict[str, int]:
        request = urllib.request.Request(f"{self.index_url}{project}/",
                                         headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                if "json" not in response.headers.get("Content-Type", ""):
                    return {}
                data = json.load(response)
        except (OSError, ValueError):
            return {}
        return {f["filename"]: f["size"] for f in data.get("files", []) if isinstance(f.get("size"), int)}

    def prefetch(self, projects: Iterable[str]) -> None:
        todo = sorted({canonicalize_name(p) for p in projects} - set(self.pages))
        with ThreadPoolExecutor(max_workers=8) as pool:
            for project, page in zip(todo, pool.map(self._page, todo)):
                self.pages[project] = page

    def size(self, project: str, filename: str) -> int | None:
        self.prefetch([project])
        return self.pages[canonicalize_name(project)].get(filename)


def _ranks(target: Target) -> dict[str, int]:
    ranks: dict[str, int] = {}
    for rank, tag in enumerate(target.tags):
        for expanded in parse_tag(tag):
            ranks.setdefault(str(expanded), rank)
    return ranks


def _best_file(package: Mapping[str, Any], target: Target, ranks: Mapping[str, int]) -> tuple[str, int | None] | None:
    """(file name, recorded size) pip would fetch for the target: the best-ranked fitting wheel, else the sdist."""
    files = select_files(package, target.tags, [])
    wheels = [f for f in files if f.kind == "wheel"]
    if wheels:
        def rank(name: str) -> int:
            return min(ranks.get(str(t), 10 ** 6) for t in parse_wheel_filename(name)[3])
        best = min(wheels, key=lambda f: rank(f.filename))
        return best.filename, best.size
    return (files[0].filename, files[0].size) if files else None


def _measure(files: Sequence[tuple[str, str, int | None]], sizes: JsonSizes) -> tuple[int, int, list[tuple[str, int]]]:
    """(total bytes, fallbacks, [(file, bytes)]) for (project, file name, recorded size) triples."""
    sizes.prefetch(project for project, _, _ in files)
    total, fallbacks, each = 0, 0, []
    for project, filename, recorded in files:
        size = sizes.size(project, filename)
        if size is None:
            fallbacks += 1
            size = recorded or 0
        total += size
        each.append((filename, size))
    return total, fallbacks, each


def measure(set_name: str, with_optional: bool, target_ref: str, index_url: str, sizes: JsonSizes,
            work: Path) -> Row:
    target = resolve_target(target_ref)
    lines = [line.strip() for line in (REPO / "lockfiles" / set_name / "requirements.in").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    if not with_optional:
        lines = [line for line in lines if canonicalize_name(line.split("=")[0]) != OPTIONAL]
    label = set_name if with_optional else f"{set_name} -{OPTIONAL}"
    slug = f"{set_name}-{int(with_optional)}-{canonicalize_name(target.name or 'target')}"
    requirements = work / f"{slug}.in"
    requirements.write_text("".join(f"{line}\n" for line in lines))

    out = work / f"{slug}.pylock.toml"
    lock_requirements(LockOptions(requirements=(requirements,), target=target, output=out, index_url=index_url))
    planned = plan_files(read_lock(out), target).files
    locked_bytes, lock_fallbacks, _ = _measure([(f.package, f.filename, f.size) for f in planned], sizes)

    uv = engine.find_uv()
    naive_run = engine.run_compile(uv=uv, requirements=requirements, target=target,
                                   platform=engine.uv_platform(target), index_url=index_url)
    if not naive_run.ok:
        raise SystemExit(f"naive resolution failed for {label} / {target.name}: {naive_run.stderr[-2000:]}")
    ranks = _ranks(target)
    naive_files = []
    for package in naive_run.lock.get("packages", []):
        best = _best_file(package, target, ranks)
        if best is not None:
            naive_files.append((package["name"], best[0], best[1]))
    naive_bytes, naive_fallbacks, each = _measure(naive_files, sizes)
    largest = tuple(sorted(each, key=lambda item: -item[1])[:5])
    return Row(lock=label, target=target.name or target_ref, files=len(planned), bytes=locked_bytes,
               naive_files=len(naive_files), naive_bytes=naive_bytes,
               ratio=naive_bytes / locked_bytes if locked_bytes else float("inf"),
               goal=GOALS.get((set_name, with_optional)), size_fallbacks=lock_fallbacks + naive_fallbacks,
               naive_largest=largest)


def render(rows: Sequence[Row]) -> str:
    lines = ["| lock | target | files | MiB | naive files | naive MiB | ratio | goal |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        goal = "—" if row.goal is None else (f"≤ 1/{row.goal}: " + ("met" if row.ratio >= row.goal else "NOT met"))
        lines.append(f"| {row.lock} | {row.target} | {row.files} | {row.bytes / MIB:.1f} | {row.naive_files} | "
                     f"{row.naive_bytes / MIB:,.0f} | 1/{row.ratio:,.0f} | {goal} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", help=f"repeatable (default: {', '.join(TARGETS)})")
    parser.add_argument("--set", action="append", choices=SETS, help="repeatable (default: both)")
    parser.add_argument("--index-url", help="PEP 503/691 index (default: as `offlinepack build` finds it)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    index_url = args.index_url or next((os.environ[k] for k in INDEX_ENV if os.environ.get(k)), None) \
        or default_index_urls()[0]
    sizes = JsonSizes(index_url)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lock-size-") as tmp:
        for target_ref in args.target or TARGETS:
            ref = str(REPO / target_ref) if (REPO / target_ref).exists() else target_ref
            for set_name in args.set or SETS:
                # without imagecodecs only for the run lock (nnunetv2 requires imagecodecs itself)
                for with_optional in (True, False) if set_name == "vesuvius" else (True,):
                    rows.append(measure(set_name, with_optional, ref, index_url, sizes, Path(tmp)))
    print(render(rows))
    seconds = time.perf_counter() - started
    uv_version = subprocess.run([engine.find_uv(), "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\n{seconds:.0f} s; sizes from the index's JSON API ({sum(r.size_fallbacks for r in rows)} fallbacks); "
          f"offlinepack {offlinepack.__version__}, {uv_version}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": platform.platform(), "python": platform.python_version(), "seconds": round(seconds, 1),
            "offlinepack": offlinepack.__version__, "uv": uv_version,
            "rows": [asdict(row) for row in rows]}, indent=1) + "\n")
    return 0 if all(r.goal is None or r.ratio >= r.goal for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
