#!/usr/bin/env python
"""Cost of each post-processing step on one volume (default 320^3), each step alone on the same input.

    .venv/bin/python scripts/bench_post.py [--size 320] [--repeats 2] [--json-out FILE]

Input: a synthetic sheet volume's label turned into a probability map (tests/support/planted.py's
recipe: smoothed label through a sigmoid, scaled by 0.6, with 27-voxel speckle). Baseline: the
default post-processing (threshold 0.5, components < 1000 dropped, 3D hole filling). Times are the
best of --repeats runs (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    import scipy

    from offlinepack.demo.synthetic import make_sheet_volume
    from offlinepack.post import PostConfig, components_backend, postprocess, probability_histogram
    from offlinepack.post.process import _label
    from offlinepack.post.topology import close_per_sheet, fill_small_cavities, plug_one_voxel_holes
    from tests.support.planted import planted_map

    shape = (args.size,) * 3
    label = make_sheet_volume(shape, seed=1, noise=0.0).label
    prob = planted_map(label, 0.6, 200, seed=1)
    backend = components_backend()
    mask = prob >= 0.3
    labels, count = _label(mask, backend)

    def best(fn) -> float:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return round(min(times), 3)

    steps = {
        "default post (threshold 0.5, components < 1000, fill 3d): baseline": lambda: postprocess(prob, PostConfig()),
        "threshold only": lambda: postprocess(prob, PostConfig(threshold=0.3, min_component_voxels=0,
                                                               fill_holes="none")),
        "hysteresis (0.3 / 0.15)": lambda: postprocess(prob, PostConfig(threshold=0.3, hysteresis_low=0.15,
                                                                         min_component_voxels=0, fill_holes="none")),
        "histogram for a per-volume rule": lambda: probability_histogram(prob),
        "components < 20000 dropped": lambda: postprocess(prob, PostConfig(threshold=0.3, min_component_voxels=20000,
                                                                            fill_holes="none")),
        "components by size + mean probability floor": lambda: postprocess(
            prob, PostConfig(threshold=0.3, min_component_voxels=20000, min_component_mean_probability=0.4,
                             fill_holes="none")),
        "closing per sheet, radius 1 (step alone)": lambda: close_per_sheet(mask, labels, count, 1),
        "closing per sheet, radius 2 (step alone)": lambda: close_per_sheet(mask, labels, count, 2),
        "fill holes 3d (step alone)": lambda: postprocess(mask.astype(np.float32), PostConfig(min_component_voxels=0)),
        "fill cavities <= 1000 voxels (step alone)": lambda: fill_small_cavities(
            mask, 1000, lambda m: _label(~m, backend, connectivity=6)),
        "plug 1-voxel holes (step alone)": lambda: plug_one_voxel_holes(mask),
    }
    results = {name: best(fn) for name, fn in steps.items()}
    out = {"shape": list(shape), "components": int(count), "backend": backend, "seconds": results,
           "machine": {"cpus": os.cpu_count(), "load_1min": os.getloadavg()[0], "python": platform.python_version(),
                       "numpy": np.__version__, "scipy": scipy.__version__}}
    text = json.dumps(out, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)


if __name__ == "__main__":
    main()
