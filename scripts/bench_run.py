#!/usr/bin/env python
"""Benchmark `offlinepack run`: seconds per volume by stage, the overlap, and host memory over many volumes.

    .venv/bin/python scripts/bench_run.py                        # CPU, demo model, one 320^3 volume
    .venv/bin/python scripts/bench_run.py --rss-volumes 20 --rss-size 96
    # GPU machine, m7-sized random-weight nnU-Net (as scripts/bench_infer.py builds it), 5 volumes for the overlap:
    python scripts/bench_run.py --model m7 --device cuda --precision fp16 --mirror 0,1,2 --size 320 --volumes 5 \
        --rss-volumes 20 --rss-size 320

Part 1 (stages): one volume through each stage alone, timed: read (LZW TIFF, the reader run uses),
inference (engine.predict), post (default post-processing), write (mask TIFF), zip (validated zip).
Part 2 (pipeline): `run_pipeline` on --volumes volumes of --size^3 (overlapped), wall time and the share
of wall time that is not inference (goal on a GPU: <= 10 %).
Part 3 (memory): `run_pipeline` on --rss-volumes volumes of --rss-size^3; RSS after each volume and the
peak (VmHWM, process-wide: use --skip-stages for the memory run's own peak). Flat = the second half of
the run never 5 % above the first half's highest RSS; also the least-squares slope in MiB per volume.
Prints one JSON object (also written to --json-out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _write_inputs(folder: Path, count: int, size: int) -> Path:
    from offlinepack.demo.sample import write_lzw_tiff
    from offlinepack.demo.synthetic import make_sheet_volume

    images = folder / "test_images"
    images.mkdir(parents=True, exist_ok=True)
    base = make_sheet_volume((size, size, size), seed=1).image
    for i in range(count):
        # cheap variety: roll the same synthetic volume, so generating 20 inputs takes no time
        write_lzw_tiff(np.roll(base, 7 * i, axis=2), images / f"{1000 + i}.tif")
    (folder / "test.csv").write_text("id,scroll_id\n" + "".join(f"{1000 + i},1\n" for i in range(count)))
    return folder


def _m7_model(work: Path) -> str:
    """A random-weight nnU-Net folder with the m7 plans (ResEnc-L, 192^3 patch), written by bench_infer.py."""
    import sys

    repo = Path(__file__).resolve().parent.parent
    sys.path[:0] = [str(repo), str(repo / "scripts")]
    from bench_infer import write_model

    folder = work / "m7"
    write_model(folder, smoke=False)
    return str(folder)


def _config(args: argparse.Namespace, input_dir: Path, output: Path):
    from offlinepack.run import RunConfig

    inference = {"device": args.device, "precision": args.precision,
                 "mirror_axes": tuple(int(a) for a in args.mirror.split(",") if a.strip())}
    return RunConfig(models=(args.model,), input=input_dir, output=output, overwrite=True, inference=inference)


def stages(args: argparse.Namespace, work: Path) -> dict:
    from offlinepack.post import PostConfig, postprocess
    from offlinepack.run.pipeline import _default_engine
    from offlinepack.run.plan import plan_run
    from offlinepack.submission import write_mask_tiff, write_submission_zip
    from offlinepack.volumes import read_volume

    folder = _write_inputs(work / "stages", 1, args.size)
    plan = plan_run(_config(args, folder, work / "stages-out" / "submission.zip"))
    start = time.perf_counter()
    engine = _default_engine(plan.models, plan.config)
    setup = time.perf_counter() - start
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data = read_volume(folder / "test_images" / "1000.tif")
    timings["read"] = time.perf_counter() - start
    engine.predict(data.array[:64, :64, :64])  # warm-up (kernels, allocator) outside the timing
    start = time.perf_counter()
    probability = engine.predict(data.array)
    timings["inference"] = time.perf_counter() - start
    start = time.perf_counter()
    mask = postprocess(probability, PostConfig())
    timings["post"] = time.perf_counter() - start
    (work / "stages-out").mkdir(exist_ok=True)
    start = time.perf_counter()
    path = write_mask_tiff(mask, work / "stages-out" / "1000.tif")
    timings["write"] = time.perf_counter() - start
    start = time.perf_counter()
    write_submission_zip({"1000": path}, work / "stages-out" / "submission.zip", {"1000": mask.shape})
    timings["zip"] = time.perf_counter() - start
    return {"size": args.size, "reader": data.reader, "engine_setup_s": round(setup, 2),
            "seconds": {k: round(v, 3) for k, v in timings.items()}, "engine": engine.describe()}


def pipeline(args: argparse.Namespace, work: Path, count: int, size: int, name: str) -> dict:
    from offlinepack.run import run_pipeline

    folder = _write_inputs(work / name, count, size)
    rss: list[int] = []

    def on_progress(event) -> None:
        if event.event == "volume":
            rss.append(_status_kib("VmRSS"))

    start = time.perf_counter()
    report = run_pipeline(_config(args, folder, work / f"{name}-out" / "submission.zip"), progress=on_progress,
                          check_ready=False)
    wall = time.perf_counter() - start
    inference = sum(v.seconds.get("inference", 0.0) for v in report.volumes)
    half = len(rss) // 2
    # flat = no growth: the second half never rises 5 % above the first half's highest (allocator noise aside)
    flat = len(rss) < 4 or max(rss[half:]) <= 1.05 * max(rss[:half])
    slope = float(np.polyfit(np.arange(len(rss)), np.array(rss) / 1024, 1)[0]) if len(rss) > 1 else 0.0
    return {"volumes": count, "size": size, "exit_code": report.exit_code, "wall_s": round(wall, 2),
            "inference_s": round(inference, 2), "non_inference_share": round(1 - inference / wall, 3) if wall else None,
            "seconds": report.seconds, "rss_mib_after_each": [round(k / 1024, 1) for k in rss],
            "peak_rss_mib": round(_status_kib("VmHWM") / 1024, 1), "rss_flat": flat,
            "rss_slope_mib_per_volume": round(slope, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo",
                        help="model path, 'demo' (bundled U-Net) or 'm7' (random-weight m7-sized nnU-Net, needs nnunetv2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--mirror", default="", help="mirror axes, e.g. 0,1,2 (default: none)")
    parser.add_argument("--size", type=int, default=320, help="cube side for the stage timings and --volumes run")
    parser.add_argument("--volumes", type=int, default=0, help="volumes of --size^3 for the overlapped pipeline run")
    parser.add_argument("--rss-volumes", type=int, default=20)
    parser.add_argument("--rss-size", type=int, default=96)
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    import torch

    result: dict = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                                "torch": torch.__version__, "cuda": torch.cuda.is_available(),
                                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                                "load_avg_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory(prefix="offlinepack-bench-") as tmp:
        work = Path(tmp)
        if args.model == "m7":
            args.model = _m7_model(work)
        if not args.skip_stages:
            result["stages"] = stages(args, work)
            print(json.dumps({"stages": result["stages"]["seconds"]}), flush=True)
        if args.volumes:
            result["pipeline"] = pipeline(args, work, args.volumes, args.size, "pipeline")
        if args.rss_volumes:
            result["memory"] = pipeline(args, work, args.rss_volumes, args.rss_size, "memory")
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json_out:
        args.json_out.write_text(text)


if __name__ == "__main__":
    main()
