#!/usr/bin/env python
"""Benchmark `offlinepack.score.score_volume` against the tests' reference scorer, in the same run.

For each size, one synthetic sheet volume pair (tests/support/sheet_volumes.py: parallel curved sheets 1-2 voxels
thick, shifted sheets, holes, bridges, speckle, a missing sheet, a label-2 slab) is scored by:
  - offlinepack, workers=2 (what `offlinepack score` does for one volume on 2 cores) and workers=1;
  - the reference (topolosses' compiled Betti-Matching-3D tiled 2x2x2 + surface-distance + skimage/cc3d VOI),
    i.e. the official computation step by step.
Each measurement runs in a fresh process (numba's on-disk cache warmed first, outside the timing); peak memory is
the largest summed RSS of that process and its worker processes, sampled every 20 ms.

    .venv/bin/python scripts/bench_score.py                  # 128, 256, 320
    .venv/bin/python scripts/bench_score.py --sizes 128 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

IMPLEMENTATIONS = ("offlinepack-w2", "offlinepack-w1", "reference")


def _tree_rss_kib(pid: int) -> int:
    """RSS of `pid` and all its descendants (KiB), from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack += [int(c) for c in handle.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def measure(impl: str, data: Path) -> dict:
    """Run one implementation in a fresh process; its time as it reports it, the tree's peak RSS as sampled."""
    process = subprocess.Popen([sys.executable, __file__, "--one", impl, str(data)], stdout=subprocess.PIPE,
                               text=True, cwd=REPO)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(process.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"{impl} failed on {data}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_mib"] = round(peak / 1024)
    result["load_after"] = round(os.getloadavg()[0], 1)  # the machine's 1-minute load: how shared it was
    return result


def run_one(impl: str, data: Path) -> None:
    import numpy as np

    arrays = np.load(data)
    pred, label = arrays["pred"], arrays["label"]
    if impl.startswith("offlinepack"):
        from offlinepack.score import score_volume
        from offlinepack.score.metric import warm_up

        warm_up()  # load (or compile) every numba function outside the timing, in every dimension's path
        start = time.perf_counter()
        result = score_volume(pred, label, workers=2 if impl.endswith("w2") else 1)
        seconds = time.perf_counter() - start
        values = {name: getattr(result, name) for name in ("raw_score", "topo_score", "surface_dice", "voi_score")}
    else:
        from tests.support.reference_scorer import reference_score

        start = time.perf_counter()
        result = reference_score(pred, label)
        seconds = time.perf_counter() - start
        values = {name: getattr(result, name) for name in ("raw_score", "topo_score", "surface_dice", "voi_score")}
    print(json.dumps({"impl": impl, "seconds": seconds, **values}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256,320")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "NPZ"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], Path(args.one[1]))
        return
    import numpy as np

    from tests.support.sheet_volumes import sheet_pair

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            pred, label = sheet_pair((size, size, size), seed=size)
            data = Path(tmp) / f"sheets-{size}.npz"
            np.savez(data, pred=pred, label=label)
            results = {impl: measure(impl, data) for impl in IMPLEMENTATIONS}
            ref = results["reference"]
            for impl, r in results.items():
                diff = max(abs(r[k] - ref[k]) for k in ("raw_score", "topo_score", "surface_dice", "voi_score"))
                row = {"size": size, **r, "speedup": ref["seconds"] / r["seconds"], "max_abs_diff_vs_reference": diff}
                rows.append(row)
                print(f"{size}^3 {impl:15s} {r['seconds']:8.2f} s  peak {r['peak_mib']:6d} MiB  "
                      f"x{row['speedup']:5.1f}  score {r['raw_score']:.12f}  max|diff| {diff:.1e}  "
                      f"load {r['load_after']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
