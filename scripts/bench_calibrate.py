#!/usr/bin/env python
"""Calibration wall time: the local process pool vs a Dask LocalCluster, and the 320^3 extrapolation.

    .venv/bin/python scripts/bench_calibrate.py [--volumes 6] [--size 96] [--budget 200] [--workers 2]
        [--eval-size 320] [--json-out FILE]

Part 1: the cost of one (volume, setting) evaluation at --eval-size^3 (post-processing + the leaderboard
score, one process), the mean over 4 settings.
Part 2: `calibrate --search grid --budget B` on --volumes planted volumes of --size^3 on LocalPool(workers),
early stopping on; the evaluations it needed against settings x volumes.
Part 3: the same search on a Dask LocalCluster (127.0.0.1, `workers` processes, 1 thread each): overhead
against Part 2 (baseline: the local pool, same run).
Extrapolation for the issue's target (20 volumes of 320^3, 200 settings): evaluations share from Part 2 x
4000 x Part 1's cost / workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volumes", type=int, default=6)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--eval-size", type=int, default=320)
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args()

    from offlinepack.calibrate import LocalPool, calibrate, pair_with_labels
    from offlinepack.calibrate.tasks import leaderboard_score
    from offlinepack.demo.synthetic import make_sheet_volume
    from offlinepack.post import PostConfig, postprocess
    from offlinepack.probabilities import open_probabilities
    from tests.support.planted import planted_map, write_planted_set

    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}}
    # part 1
    shape = (args.eval_size,) * 3
    label = make_sheet_volume(shape, seed=3, noise=0.0).label
    prob = planted_map(label, 0.6, 200, seed=3)
    leaderboard_score(label[:32, :32, :32], label[:32, :32, :32])  # numba warm-up
    costs = []
    for threshold, size in ((0.2, 20000), (0.3, 20000), (0.4, 1000), (0.5, 0)):
        start = time.perf_counter()
        mask = postprocess(prob, PostConfig(threshold=threshold, min_component_voxels=size))
        leaderboard_score(mask, label)
        costs.append(time.perf_counter() - start)
    out["eval_seconds_320"] = round(float(np.mean(costs)), 3)
    out["load_after_part1"] = os.getloadavg()[0]
    del prob, label
    # part 2
    folder = Path(tempfile.mkdtemp(prefix="offlinepack-bench-cal-"))
    probs, labels = write_planted_set(folder, [0.5, 0.9] * (args.volumes // 2), shape=(args.size,) * 3)
    labelled = pair_with_labels([(open_probabilities(probs), 1.0)], labels)
    start = time.perf_counter()
    local = calibrate(labelled, search="grid", budget=args.budget, folds=5, pool=LocalPool(args.workers))
    out["pool"] = {"seconds": round(time.perf_counter() - start, 2), "settings": local.settings_scored,
                   "evaluations": local.evaluations, "full_grid": local.settings_scored * args.volumes,
                   "dropped_early": local.dropped_early, "cv": local.cv.to_dict()}
    out["load_after_part2"] = os.getloadavg()[0]
    # part 3
    if not args.skip_dask:
        import distributed

        from offlinepack.calibrate import DaskPool

        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster:
            pool = DaskPool(cluster.scheduler_address)
            pool.client.run(lambda: leaderboard_score(np.zeros((8, 8, 8), np.uint8), np.zeros((8, 8, 8), np.uint8)))
            start = time.perf_counter()
            remote = calibrate(labelled, search="grid", budget=args.budget, folds=5, pool=pool)
            seconds = time.perf_counter() - start
            pool.close()
        out["dask"] = {"seconds": round(seconds, 2), "same_result": remote.best == local.best
                       and remote.cv == local.cv,
                       "overhead_vs_pool": round(seconds / out["pool"]["seconds"] - 1.0, 3)}
    share = local.evaluations / (local.settings_scored * args.volumes)
    out["extrapolated_20x320_200_settings_minutes"] = round(share * 20 * 200 * out["eval_seconds_320"]
                                                            / args.workers / 60, 1)
    out["evaluation_share"] = round(share, 3)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json_out:
        Path(args.json_out).write_text(text)


if __name__ == "__main__":
    main()
