#!/usr/bin/env python3
"""Inference benchmark: offlinepack vs nnunetv2's predictor vs MONAI, same model, volume and GPU.

GPU run (needs CUDA, nnunetv2 + dynamic-network-architectures, optionally monai):

    python scripts/bench_infer.py --out bench-infer.json

writes a random-weight ResEnc-L nnU-Net folder with the m7 plans (features 32..320, blocks
1,3,4,6,6,6, 192^3 patch, 3 classes), makes one 320^3 uint8 volume, and measures in separate
subprocesses (clean peak-memory counters): offlinepack, nnunetv2, MONAI sliding_window_inference
(8-flip TTA, step/overlap 0.5, Gaussian, fp16 autocast), then offlinepack and nnunetv2 again under a
15 GB cap (torch.cuda.set_per_process_memory_fraction), then offlinepack with torch.compile (opt-in
setting; skip with --no-compile). Reports sec/volume (median of --repeats
after one warm-up), achieved TFLOP/s, peak GPU memory, and mask agreement (> 0.5) with nnunetv2.

CPU run: `python scripts/bench_infer.py --cpu-unet` measures the built-in U-Net's throughput on CPU.
`--smoke` runs the GPU comparison on CPU with a tiny network (checks this script, not speed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GiB = 1 << 30


def make_volume(shape, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    sheets = np.sin(z / 6.0 + np.sin(x / 17.0) * 2 + y / 23.0)
    return np.clip(100 + 80 * sheets + rng.normal(0, 25, shape), 0, 255).astype(np.uint8)


def write_model(folder: Path, smoke: bool) -> None:
    from tests.support.nnunet import IMPORTS, RESENC, arch_kwargs, m7_architecture, write_nnunet_folder

    labels = {"background": 0, "surface": 1, "unlabeled": 2}  # 3 output classes like m7
    if smoke:
        arch = {"network_class_name": RESENC, "arch_kwargs": arch_kwargs((4, 8, 16), (1, 2, 2), True), "_kw_requires_import": IMPORTS}
        write_nnunet_folder(folder, architecture=arch, patch_size=(32, 32, 32), labels=labels, logit_scale=5.0)
    else:
        write_nnunet_folder(folder, architecture=m7_architecture(), patch_size=(192, 192, 192), labels=labels, logit_scale=5.0)


# --- workers (each runs in its own process) ------------------------------------------------------
def _timed(run, repeats: int, device: str):
    import torch

    run()  # warm-up: cuDNN autotuning, allocator growth
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else None
    return out, times, peak


def worker_offlinepack(folder: Path, volume: np.ndarray, device: str, repeats: int, batch: int | None, compile: bool = False) -> tuple:
    from offlinepack.inference import InferenceSettings, build_engine

    settings = InferenceSettings(device=device, precision="fp16", step_size=0.5, batch_size=batch, compile=compile)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = build_engine([folder], settings=settings)
    out, times, peak = _timed(lambda: engine.predict(volume), repeats, device)
    return out, times, peak, engine.describe()


def _nnunet_parts(folder: Path, device: str):
    import torch
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = json.loads((folder / "plans.json").read_text())
    dataset = json.loads((folder / "dataset.json").read_text())
    pm = PlansManager(plans)
    cm = pm.get_configuration("3d_fullres")
    lm = pm.get_label_manager(dataset)
    params = [torch.load(folder / "fold_0" / "checkpoint_final.pth", map_location="cpu", weights_only=False)["network_weights"]]
    net = get_network_from_plans(cm.network_arch_class_name, cm.network_arch_init_kwargs, cm.network_arch_init_kwargs_req_import,
                                 1, lm.num_segmentation_heads, allow_init=False, deep_supervision=False)
    predictor = nnUNetPredictor(tile_step_size=0.5, use_gaussian=True, use_mirroring=True,
                                perform_everything_on_device=device.startswith("cuda"), device=torch.device(device),
                                verbose=False, verbose_preprocessing=False, allow_tqdm=False)
    predictor.manual_initialization(net, pm, cm, params, dataset, "nnUNetTrainer", (0, 1, 2))
    return predictor, pm, cm, lm, dataset


def worker_nnunet(folder: Path, volume: np.ndarray, device: str, repeats: int, batch: int | None) -> tuple:
    import torch
    from nnunetv2.inference.export_prediction import convert_predicted_logits_to_segmentation_with_correct_shape
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import DefaultPreprocessor

    predictor, pm, cm, lm, dataset = _nnunet_parts(folder, device)

    def run():
        data, _, props = DefaultPreprocessor(verbose=False).run_case_npy(volume[None].astype(np.float32), None, {"spacing": [1.0] * 3}, pm, cm, dataset)
        logits = predictor.predict_logits_from_preprocessed_data(torch.from_numpy(data)).cpu()
        _, probs = convert_predicted_logits_to_segmentation_with_correct_shape(logits, pm, cm, lm, props, return_probabilities=True)
        return probs[1].astype(np.float16)

    out, times, peak = _timed(run, repeats, device)
    return out, times, peak, {"nnunetv2": _version("nnunetv2")}


def worker_monai(folder: Path, volume: np.ndarray, device: str, repeats: int, batch: int | None) -> tuple:
    import itertools

    import torch
    from monai.inferers import sliding_window_inference

    from offlinepack.models.loader import load_model
    from offlinepack.models.preprocessing import prepare, restore

    model = load_model(folder)
    net = model.networks[0].to(device).eval()
    flips = [c for n in range(4) for c in itertools.combinations((2, 3, 4), n)]

    def tta(x):
        out = net(x)
        for f in flips[1:]:
            out = out + torch.flip(net(torch.flip(x, f)), f)
        return out / len(flips)

    def run():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=device.startswith("cuda")):
            prepared = prepare(torch.from_numpy(volume).to(device), model.preprocessing)
            logits = sliding_window_inference(prepared.data[None], model.patch_size, 1, tta, overlap=0.5, mode="gaussian",
                                              sigma_scale=0.125, padding_mode="constant", cval=0.0)
            prob = torch.softmax(logits[0].float(), 0)[model.surface_channel]
            return restore(prob, prepared, model.preprocessing, 0.0).half().cpu().numpy()

    out, times, peak = _timed(run, repeats, device)
    return out, times, peak, {"monai": _version("monai")}


def worker_offlinepack_compiled(folder: Path, volume: np.ndarray, device: str, repeats: int, batch: int | None) -> tuple:
    return worker_offlinepack(folder, volume, device, repeats, batch, compile=True)


WORKERS = {"offlinepack": worker_offlinepack, "offlinepack-compile": worker_offlinepack_compiled,
           "nnunetv2": worker_nnunet, "monai": worker_monai}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def run_worker(args) -> None:
    import torch

    if args.worker_cap_gb:
        torch.cuda.set_per_process_memory_fraction(args.worker_cap_gb * GiB / torch.cuda.get_device_properties(0).total_memory)
    volume = np.load(args.volume)
    out, times, peak, info = WORKERS[args.worker](Path(args.model), volume, args.device, args.repeats, args.batch)
    np.save(args.result, out)
    print(json.dumps({"times": times, "peak_bytes": peak, "info": info}, default=str))


# --- orchestration ---------------------------------------------------------------------------------
def forward_flops(folder: Path, device: str) -> float | None:
    """FLOPs of one batch-1 forward at the patch size (torch's flop counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from offlinepack.models.loader import load_model

    model = load_model(folder)
    net = model.networks[0].to(device)
    x = torch.zeros((1, 1, *model.patch_size), device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(x)
    del net
    return float(counter.get_total_flops())


def machine_facts(device: str) -> dict:
    import torch

    facts = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
             "nnunetv2": _version("nnunetv2"), "dynamic-network-architectures": _version("dynamic-network-architectures"),
             "monai": _version("monai")}
    if device.startswith("cuda"):
        facts.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                     gpu_memory_gb=round(torch.cuda.get_device_properties(0).total_memory / GiB, 1))
    return facts


def compare_runs(args) -> dict:
    import torch

    smoke = args.smoke
    device = "cpu" if smoke else "cuda"
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU: run this on the GPU machine (or --smoke / --cpu-unet here)")
    shape = (64, 64, 64) if smoke else (320, 320, 320)
    work = Path(tempfile.mkdtemp(prefix="bench-infer-"))
    write_model(work / "model", smoke)
    np.save(work / "volume.npy", make_volume(shape))
    flops = forward_flops(work / "model", device)
    from offlinepack.inference.tiling import tile_origins

    passes = len(tile_origins(shape, (32,) * 3 if smoke else (192,) * 3, 0.5)) * 8  # 27 tiles x 8 flips = 216 on 320^3
    runs = [("offlinepack", None), ("nnunetv2", None), ("monai", None)]
    if not smoke:
        runs += [("offlinepack", args.cap_gb), ("nnunetv2", args.cap_gb)]
        if not args.no_compile:  # opt-in setting: measured here to decide whether it should be the default
            runs += [("offlinepack-compile", None), ("offlinepack-compile", args.cap_gb)]
    results = {}
    for name, cap in runs:
        label = name + (f" (cap {cap} GB)" if cap else "")
        if name == "monai" and _version("monai") is None:
            results[label] = {"skipped": "monai is not installed (pip install monai --no-deps to include it)"}
            continue
        out_path = work / f"{name}-{cap or 0}.npy"
        cmd = [sys.executable, __file__, "--worker", name, "--model", str(work / "model"), "--volume", str(work / "volume.npy"),
               "--result", str(out_path), "--device", device if device == "cpu" else "cuda:0", "--repeats", str(args.repeats)]
        if cap:
            cmd += ["--worker-cap-gb", str(cap)]
        if args.batch:
            cmd += ["--batch", str(args.batch)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            results[label] = {"failed": f"took longer than {args.timeout} s"}
            continue
        if proc.returncode != 0:
            results[label] = {"failed": proc.stderr.strip().splitlines()[-5:]}
            continue
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        sec = statistics.median(data["times"])
        results[label] = {"sec_per_volume": round(sec, 3), "times": [round(t, 3) for t in data["times"]],
                          "tflops": round(flops * passes / sec / 1e12, 1) if flops else None,
                          "peak_gb": round(data["peak_bytes"] / GiB, 2) if data["peak_bytes"] else None, "info": data["info"],
                          "result": str(out_path)}
    reference_path = work / "nnunetv2-0.npy"
    if reference_path.exists():
        reference = np.load(reference_path).astype(np.float32)
        for label, entry in results.items():
            if "result" in entry:
                ours = np.load(entry["result"]).astype(np.float32)
                diff = np.abs(ours - reference)
                entry["mask_agreement_vs_nnunetv2"] = float(np.mean((ours > 0.5) == (reference > 0.5)))
                entry["max_abs_diff_vs_nnunetv2"] = float(diff.max())
    base = results.get("nnunetv2", {}).get("sec_per_volume")
    for entry in results.values():
        if base and "sec_per_volume" in entry:
            entry["speedup_vs_nnunetv2"] = round(base / entry["sec_per_volume"], 2)
    return {"machine": machine_facts(device), "volume": list(shape), "forward_tflop": flops / 1e12 if flops else None,
            "forward_passes": passes, "results": results}


def cpu_unet(args) -> dict:
    import torch

    from offlinepack.inference import InferenceSettings, build_engine
    from offlinepack.models.builtin_unet import UNetConfig, build_unet, save_checkpoint

    work = Path(tempfile.mkdtemp(prefix="bench-unet-"))
    config = UNetConfig()
    torch.manual_seed(0)
    save_checkpoint(build_unet(config), config, work / "unet")
    volume = make_volume((args.cpu_size,) * 3)
    rows = {}
    for label, axes in (("no TTA", ()), ("8-flip TTA", (0, 1, 2))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = build_engine([work / "unet"], settings=InferenceSettings(device="cpu", mirror_axes=axes))
        engine.predict(volume[:64, :64, :64])  # warm-up
        start = time.perf_counter()
        engine.predict(volume)
        sec = time.perf_counter() - start
        rows[label] = {"sec": round(sec, 2), "mvoxels_per_s": round(volume.size / sec / 1e6, 3),
                       "estimate_320_cubed_s": round(engine.estimate_seconds((320, 320, 320)) or 0, 0),
                       "batch": engine.describe()["batch_size_used"]["cpu"]}
    return {"machine": machine_facts("cpu"), "torch_threads": torch.get_num_threads(), "model": "built-in U-Net " + str(list(config.features)),
            "patch": list(config.patch_size), "volume": [args.cpu_size] * 3, "results": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cap-gb", type=float, default=15.0)
    parser.add_argument("--batch", type=int, default=None, help="offlinepack batch size (default: from free memory)")
    parser.add_argument("--smoke", action="store_true", help="tiny network on CPU: checks the script, not speed")
    parser.add_argument("--cpu-unet", action="store_true", help="built-in U-Net throughput on CPU")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile runs (they add a few minutes)")
    parser.add_argument("--cpu-size", type=int, default=128)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measured configuration")
    # internal: one measurement in a fresh process
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--model")
    parser.add_argument("--volume")
    parser.add_argument("--result")
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--worker-cap-gb", type=float, default=None)
    args = parser.parse_args()
    if args.worker:
        run_worker(args)
        return
    report = cpu_unet(args) if args.cpu_unet else compare_runs(args)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
