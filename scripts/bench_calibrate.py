#!/usr/bin/env python
"""Calibration wall time: the halving search vs the exhaustive baseline, local process pool vs Dask.

    .venv/bin/python scripts/bench_calibrate.py [--volumes 20] [--size 320] [--budget 200] [--workers 2]
        [--data DIR] [--scheduler local|local-cluster|both] [--exhaustive run|extrapolate]
        [--rank-check N] [--json FILE]

The issue's target: 20 volumes of 320^3, a 200-setting grid search, 2 workers, <= 15 min; the Dask
LocalCluster within 10 % of the process pool. Data: planted synthetic volumes (tests/support/planted.py,
families scaled 0.5 and 0.9 so a per-volume rule pays), written once to --data (20 x 320^3: ~700 MB, a few
minutes on 2 cores) and reused by later runs; the set is not part of the timing.

Parts, all in this run:
1. the cost of one exact evaluation (post-processing + leaderboard score) at --size, one process, the mean of
   4 settings on the set's first volume: settings x volumes x that / workers is an upper bound of the
   exhaustive search (its racing and its reuse of identical masks save a lot: on 20 x 128^3 it measured 1.3
   min against 8.9 extrapolated); --exhaustive run measures it (20 x 320^3: expect ~30 min idle);
2. `calibrate --strategy halving` on LocalPool(workers): wall time, the rungs, exact and cheap evaluations;
3. (--scheduler local-cluster|both) the same on a Dask LocalCluster (127.0.0.1, `workers` processes x 1
   thread): overhead vs part 2 and whether the result is identical;
4. (--rank-check N) how the cheap scores rank N grid settings against the exact score (Spearman, and whether
   the exact best is in the cheap top 10 %), on the first 2 volumes, whole and centre-cropped.
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


def _write_volume(folder: Path, index: int, scale: float, size: int) -> None:
    """One planted volume, as tests/support/planted.write_planted_set writes its index-th (same seed)."""
    from offlinepack.demo.sample import write_lzw_tiff
    from offlinepack.demo.synthetic import make_sheet_volume
    from offlinepack.probabilities import encode
    from tests.support.planted import planted_map

    label = make_sheet_volume((size,) * 3, seed=index, noise=0.0).label
    np.save(folder / "probs" / f"{index:03d}.npy", encode(planted_map(label, scale, 200, index), "uint8"))
    write_lzw_tiff(label, folder / "labels" / f"{index:03d}.tif")


def make_set(folder: Path, volumes: int, size: int, workers: int) -> tuple[Path, Path]:
    """Planted volumes (families scaled 0.5 and 0.9, 200 speckle cubes each), written once and reused."""
    from concurrent.futures import ProcessPoolExecutor

    stamp = folder / "set.json"
    wanted = {"volumes": volumes, "size": size, "scales": [0.5, 0.9], "speckles": 200}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return folder / "probs", folder / "labels"
    started = time.perf_counter()
    for name in ("probs", "labels"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_write_volume, [folder] * volumes, range(volumes), [(0.5, 0.9)[i % 2] for i in range(volumes)],
                      [size] * volumes))
    stamp.write_text(json.dumps(wanted))
    print(f"wrote {volumes} volumes of {size}^3 to {folder} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return folder / "probs", folder / "labels"


def eval_cost(labelled) -> float:
    from offlinepack.calibrate.tasks import _load, leaderboard_score
    from offlinepack.post import PostConfig, postprocess_checked
    from offlinepack.score.metric import warm_up

    warm_up()
    entry = _load(labelled.items[0])
    costs = []
    for threshold, size in ((0.2, 20000), (0.3, 20000), (0.4, 1000), (0.5, 0)):
        start = time.perf_counter()
        mask = postprocess_checked(entry["probability"], PostConfig(threshold=threshold, min_component_voxels=size),
                                   entry["histogram"])
        leaderboard_score(mask, entry["label"])
        costs.append(time.perf_counter() - start)
    return float(np.mean(costs))


def warm_worker() -> None:
    """Import and compile what a calibration task uses, on a tiny volume."""
    from offlinepack.calibrate.tasks import cheap_score, post_masks
    from offlinepack.post import PostConfig, probability_histogram
    from offlinepack.probabilities import load_map  # noqa: F401 - imported for its cost
    from offlinepack.score.files import read_label  # noqa: F401
    from offlinepack.score.metric import warm_up

    warm_up()
    prob = np.zeros((16, 16, 16), np.float32)
    prob[4:12, 4:12, 8] = 0.9
    for _, mask in post_masks(prob, [PostConfig(threshold=0.5, min_component_voxels=m) for m in (0, 4)],
                              probability_histogram(prob)):
        cheap_score(mask, (prob > 0.5).astype(np.uint8))


def rank_check(labelled, count: int) -> dict:
    from scipy.stats import spearmanr

    from offlinepack.calibrate import space
    from offlinepack.calibrate.tasks import cheap_score, leaderboard_score, score_settings

    voxels = float(np.prod(labelled.shapes[0]))
    grid = space.grid(voxels)
    settings = [grid[i] for i in sorted(set(np.linspace(0, len(grid) - 1, count).round().astype(int)))]
    out = {}
    for item in labelled.items[:2]:
        exact = np.array(score_settings(item, settings, leaderboard_score))
        for name, crop in (("cheap_whole", False), ("cheap_crop", True)):
            cheap = np.array(score_settings(item, settings, cheap_score, crop))
            top = np.argsort(-cheap)[:max(1, len(settings) // 10)]
            out.setdefault(name, []).append({"spearman": round(float(spearmanr(exact, cheap)[0]), 3),
                                             "exact_best_in_cheap_top10pct": bool(int(np.argmax(exact)) in top)})
    return {"settings": len(settings), **out}


def run_calibration(labelled, args, pool, strategy: str):
    from offlinepack.calibrate import calibrate

    start = time.perf_counter()
    result = calibrate(labelled, search="grid", budget=args.budget, folds=args.folds, pool=pool, strategy=strategy,
                       progress=lambda e: print(f"  [{time.perf_counter() - start:7.1f} s] {e.message}",
                                                file=sys.stderr) if e.message else None)
    return result, time.perf_counter() - start


def summary(result, seconds: float) -> dict:
    return {"seconds": round(seconds, 1), "minutes": round(seconds / 60, 2), "settings": result.settings_scored,
            "exact_evaluations": result.evaluations, "cheap_evaluations": result.cheap_evaluations,
            "rungs": [r.to_dict() for r in result.rungs], "best": result.best, "cv": result.cv.to_dict(),
            "in_sample": result.in_sample.to_dict(), "defaults": result.defaults.to_dict(),
            "rule_chosen": result.rule_chosen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=20)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data", type=Path, help="where the synthetic set is written / reused "
                                                  "[$TMPDIR/offlinepack-bench-cal-<volumes>x<size>]")
    parser.add_argument("--scheduler", choices=("local", "local-cluster", "both"), default="both")
    parser.add_argument("--exhaustive", choices=("extrapolate", "run"), default="extrapolate")
    parser.add_argument("--rank-check", type=int, default=0, metavar="N")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()

    import tempfile

    from offlinepack.calibrate import LocalPool, pair_with_labels
    from offlinepack.probabilities import open_probabilities

    folder = args.data or Path(tempfile.gettempdir()) / f"offlinepack-bench-cal-{args.volumes}x{args.size}"
    folder.mkdir(parents=True, exist_ok=True)
    probs, labels = make_set(folder, args.volumes, args.size, args.workers)
    labelled = pair_with_labels([(open_probabilities(probs), 1.0)], labels)
    import numba
    import scipy

    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                             "scipy": scipy.__version__, "numba": numba.__version__},
                 "volumes": args.volumes, "size": args.size, "budget": args.budget, "workers": args.workers,
                 "load_at_start": round(os.getloadavg()[0], 2)}
    out["eval_seconds"] = round(eval_cost(labelled), 3)
    if args.rank_check:
        out["rank_check"] = rank_check(labelled, args.rank_check)
    from offlinepack.calibrate import tasks

    tasks._VOLUMES.clear()  # the forked pool starts as cold as the Dask workers

    def save() -> None:  # after every part: a failure later keeps what was measured
        if args.json_out:
            args.json_out.write_text(json.dumps(out, indent=1) + "\n")

    save()
    pool = LocalPool(args.workers)
    try:
        result, seconds = run_calibration(labelled, args, pool, "halving")
    finally:
        pool.close()
    out["halving_local"] = summary(result, seconds)
    out["load_after_local"] = round(os.getloadavg()[0], 2)
    settings = result.settings_scored
    out["exhaustive_extrapolated_minutes"] = round(settings * args.volumes * out["eval_seconds"] / args.workers / 60, 2)
    save()
    if args.exhaustive == "run":
        pool = LocalPool(args.workers)
        try:
            full, seconds = run_calibration(labelled, args, pool, "exhaustive")
        finally:
            pool.close()
        out["exhaustive_local"] = summary(full, seconds) | {"dropped_early": full.dropped_early}
        save()
    if args.scheduler in ("local-cluster", "both"):
        import distributed

        from offlinepack.calibrate import DaskPool

        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster:
            dask_pool = DaskPool(cluster.scheduler_address)
            # the modules and numba's cache loaded once per worker, as the local pool's forks inherit them from
            # this process (a long-lived cluster is warm too)
            dask_pool.client.run(warm_worker)
            try:
                remote, seconds = run_calibration(labelled, args, dask_pool, "halving")
            finally:
                dask_pool.close()
        out["halving_dask"] = summary(remote, seconds) | {
            "same_result": remote.best == result.best and remote.cv == result.cv,
            "overhead_vs_pool": round(seconds / out["halving_local"]["seconds"] - 1.0, 3)}
    save()
    print_table(out)
    if args.json_out:
        print(f"wrote {args.json_out}")


def print_table(out: dict) -> None:
    local = out["halving_local"]
    rows = [
        (f"one exact evaluation at {out['size']}^3 (1 process)", f"{out['eval_seconds']:.2f} s"),
        (f"exhaustive, {local['settings']} settings x {out['volumes']} volumes / {out['workers']} workers "
         "(extrapolated upper bound: no racing, no mask reuse)", f"{out['exhaustive_extrapolated_minutes']:.2f} min"),
    ]
    if "exhaustive_local" in out:
        full = out["exhaustive_local"]
        rows.append(("exhaustive, measured (LocalPool, racing on)",
                     f"{full['minutes']:.2f} min, cv {full['cv']['mean']:.4f}, {full['exact_evaluations']} exact"))
    for rung in local["rungs"]:
        rows.append((f"  halving rung {rung['rung']} ({rung['scorer']})",
                     f"{rung['settings']} x {rung['volumes']} vol = {rung['evaluations']} evals, "
                     f"{rung['seconds']:.1f} s, kept {rung['kept']}"))
    rows.append((f"halving, LocalPool({out['workers']})",
                 f"{local['minutes']:.2f} min, cv {local['cv']['mean']:.4f} (defaults {local['defaults']['mean']:.4f})"))
    if "halving_dask" in out:
        remote = out["halving_dask"]
        rows.append((f"halving, Dask LocalCluster ({out['workers']} x 1 thread)",
                     f"{remote['minutes']:.2f} min, overhead {remote['overhead_vs_pool'] * 100:+.1f} %, "
                     f"same result: {remote['same_result']}"))
    if "exhaustive_local" in out:
        rows.append(("speed-up vs the exhaustive search, measured",
                     f"{out['exhaustive_local']['minutes'] / max(local['minutes'], 1e-9):.1f}x"))
    rows.append(("speed-up vs the extrapolated upper bound",
                 f"{out['exhaustive_extrapolated_minutes'] / max(local['minutes'], 1e-9):.1f}x"))
    width = max(len(name) for name, _ in rows)
    print(f"\ncalibrate: {out['volumes']} volumes of {out['size']}^3, grid budget {out['budget']}, "
          f"{out['workers']} workers (load at start {out['load_at_start']})")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    if "rank_check" in out:
        print(f"  rank check ({out['rank_check']['settings']} settings): "
              + json.dumps({k: v for k, v in out["rank_check"].items() if k != "settings"}))


if __name__ == "__main__":
    main()
