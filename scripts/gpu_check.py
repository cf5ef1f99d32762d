#!/usr/bin/env python3
"""The GPU proof in one command: every figure the lent GPU machine can give, in one short run.

    bash scripts/gpu_prepare.sh                                   # here, online: gpu-prepared/ (< 50 MiB)
    python3 scripts/gpu_check.py --prepared gpu-prepared --out OUT   # there, offline: <= 8 minutes
    python3 scripts/gpu_check.py --smoke --out OUT                 # anywhere, CPU, tiny sizes: checks the script

Steps (each timed, each in its own subprocess with its own timeout, each allowed to fail without
stopping the rest; a whole-run budget skips what no longer fits):
  snapshot        `bootstrap.py snapshot` of this Python, diffed against tests/data/fixtures/gpu-kernel
  install         bootstrap.py from the prepared wheelhouse (offline), plus the comparison's no-deps extras
  doctor          `offlinepack doctor --require-gpu`
  model           the m7-sized random-weight nnU-Net folder (ResEnc-L, 32..320, blocks 1,3,4,6,6,6,
                  192^3 patch, 3 classes), a 320^3 volume, FLOPs of one forward
  nnunetv2        nnUNetPredictor (step 0.5, Gaussian, 8-flip TTA, fp16): one warm-up + one timed volume
  offlinepack     the default engine (compiled on CUDA), the same figures + mask agreement with nnunetv2
  offlinepack-eager   --no-compile
  offlinepack-cap15   the default under a 15 GB cap (torch.cuda.set_per_process_memory_fraction)
  run             `offlinepack run` on two synthetic 320^3 LZW volumes: seconds per stage, non-inference share
  pytest-gpu      `pytest -m gpu` (the m7 agreement test)

`--out DIR` gets gpu-check.json and gpu-check.txt, rewritten after every step, so a kill keeps the
figures of the steps before it. `--smoke` runs the same steps on CPU with a tiny network and volume
(the doctor step then fails, as it must without a GPU, and the others go on).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
for path in (str(REPO), str(SCRIPTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

FIXTURE = REPO / "tests" / "data" / "fixtures" / "gpu-kernel"
GiB = 1 << 30
STUB_SIMPLEITK = '''"""Stand-in for SimpleITK (gpu_check.py): nnU-Net imports it for file I/O only, which the
comparison does not use (arrays go in and out directly)."""


def __getattr__(name):
    raise ImportError(f"SimpleITK.{name}: this is gpu_check's stub; real file I/O needs SimpleITK")
'''
# seconds each step may take at most on the GPU machine (smoke: SMOKE_TIMEOUT each); the whole run is
# also held to --budget
TIMEOUTS = {"snapshot": 60, "install": 150, "doctor": 90, "model": 150, "nnunetv2": 180, "offlinepack": 300,
            "offlinepack-eager": 150, "run": 240, "offlinepack-cap15": 240, "pytest-gpu": 240}
SMOKE_TIMEOUT = 90
SMOKE_SHAPE = (32, 32, 32)  # one 32^3 tile x 8 flips: the same code paths, seconds on a loaded 2-core VM


# --- the report, rewritten after every step ---------------------------------------------------------
class Report:
    def __init__(self, out: Path, meta: dict[str, Any]) -> None:
        self.out = out
        self.data: dict[str, Any] = {"format": "offlinepack-gpu-check", "version": 1, **meta, "steps": [], "goals": {}}
        self.started = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def add(self, step: dict[str, Any]) -> None:
        self.data["steps"].append(step)
        self.flush()

    def step(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.data["steps"] if s["name"] == name), None)

    def flush(self) -> None:
        self.data["wall_seconds"] = round(time.perf_counter() - self.started, 1)
        _write_atomic(self.out / "gpu-check.json", json.dumps(self.data, indent=1, default=str) + "\n")
        _write_atomic(self.out / "gpu-check.txt", render_table(self.data))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _short(figures: dict[str, Any]) -> str:
    keys = ("sec_per_volume", "speedup_vs_nnunetv2", "tflops", "peak_gib", "mask_agreement", "compile_seconds",
            "batch", "exit_code", "installed", "failed_checks", "added", "removed", "changed", "passed", "failed",
            "skipped", "non_inference_share", "inference_s_per_volume", "volume", "forward_tflop")
    parts = []
    for key in keys:
        if key in figures and figures[key] not in (None, [], {}):
            value = figures[key]
            if key == "batch" and isinstance(value, dict):  # {"cuda:0": {"0": 8}} -> cuda:0/0=8
                value = ",".join(f"{d}/{m}={b}" for d, per in value.items() for m, b in per.items())
            elif isinstance(value, list):
                value = f"{len(value)}" if len(value) > 3 else ",".join(map(str, value))
            elif isinstance(value, dict):
                value = f"{len(value)}"
            elif isinstance(value, float):
                value = f"{value:.4g}"
            parts.append(f"{key}={value}")
    return " ".join(parts)


def render_table(data: dict[str, Any]) -> str:
    lines = [f"gpu_check {'--smoke ' if data.get('smoke') else ''}on {data.get('machine', {}).get('gpu') or 'cpu'}"
             f" ({data.get('started_utc')}), wall {data.get('wall_seconds')} s", ""]
    lines.append(f"{'step':<20} {'status':<8} {'seconds':>8}  figures")
    for step in data["steps"]:
        detail = _short(step.get("figures", {}))
        if step.get("error"):
            detail = (detail + "  " if detail else "") + "error: " + str(step["error"]).splitlines()[0][:160]
        lines.append(f"{step['name']:<20} {step['status']:<8} {step['seconds']:>8.1f}  {detail}")
    if data.get("goals"):
        lines += ["", "goals:"] + [f"  {k}: {v}" for k, v in data["goals"].items()]
    return "\n".join(lines) + "\n"


# --- running steps ---------------------------------------------------------------------------------
class StepFailed(Exception):
    """A step's own verdict (bad exit code, missing figure); its figures so far are kept."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


class Checker:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.smoke = args.smoke
        self.python = args.python
        self.work = Path(args.work or tempfile.mkdtemp(prefix="gpu-check-")).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.device = "cpu" if self.smoke else "cuda:0"
        self.prepared = Path(args.prepared).resolve() if args.prepared else None
        self.site = self.work / "site"  # bootstrap's --target in smoke (never touch the dev venv)
        self.extras = self.work / "extras-site"
        self.stub = self.work / "stub"
        self.inductor_cache = self.work / "inductor-cache"  # shared: one cold compile, later processes warm
        self.bootstrap_path: str | None = None  # where bootstrap installed when site-packages was read-only
        (self.stub / "SimpleITK").mkdir(parents=True, exist_ok=True)
        (self.stub / "SimpleITK" / "__init__.py").write_text(STUB_SIMPLEITK)
        self.report = Report(Path(args.out).resolve(), {
            "smoke": self.smoke, "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "work": str(self.work),
            "budget_seconds": args.budget, "machine": machine_facts(self.smoke),
        })
        self.deadline = time.perf_counter() + args.budget  # from the first step (the machine facts import torch)

    # environment of every subprocess: the checkout's offlinepack first, then what the install step added
    def env(self, stub: bool = False, cache: bool = True) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(REPO)]
        for extra in (self.site, self.extras):
            if extra.is_dir():
                paths.append(str(extra))
        if self.bootstrap_path and self.bootstrap_path not in paths:
            paths.append(self.bootstrap_path)
        if stub:
            paths.append(str(self.stub))
        env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["PYTHONUNBUFFERED"] = "1"
        if self.smoke:
            env.setdefault("OMP_NUM_THREADS", "1")  # several torch processes on a small shared CPU
        if cache:
            env["TORCHINDUCTOR_CACHE_DIR"] = str(self.inductor_cache)
        return env

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def timeout(self, name: str) -> float:
        nominal = SMOKE_TIMEOUT if self.smoke else TIMEOUTS[name]
        return max(1.0, min(nominal, self.remaining()))

    def sub(self, name: str, cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
            log_name: str | None = None) -> subprocess.CompletedProcess:
        """Run one command in its own process group; on timeout the whole group (inductor's compile
        workers included) is killed and the step fails with what it printed so far."""
        timeout = self.timeout(name)
        log = self.work / "logs" / f"{log_name or name}.log"
        log.parent.mkdir(exist_ok=True)
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env or self.env(),
                                 cwd=str(cwd or self.work), start_new_session=True)
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = child.communicate()
            log.write_text(f"$ {' '.join(cmd)}\n# killed after {timeout:.0f} s\n--- stdout\n{out}\n--- stderr\n{err}")
            raise StepFailed(f"timed out after {timeout:.0f} s: {' '.join(cmd[:6])}") from None
        log.write_text(f"$ {' '.join(cmd)}\n# exit {child.returncode}\n--- stdout\n{out}\n--- stderr\n{err}")
        return subprocess.CompletedProcess(cmd, child.returncode, out, err)

    def run_step(self, name: str, action: Callable[[], dict[str, Any]]) -> None:
        start = time.perf_counter()
        step: dict[str, Any] = {"name": name, "status": "ok", "seconds": 0.0, "figures": {}}
        if self.remaining() < 5:
            step.update(status="skipped", error=f"out of the {self.args.budget:.0f} s budget")
        else:
            try:
                step["figures"] = action() or {}
            except StepFailed as failed:
                step.update(status="failed", error=str(failed), figures=failed.figures)
                log = self.work / "logs" / f"{name}.log"
                if log.is_file():  # the device returns only --out: keep the end of what the step printed
                    step["log_tail"] = log.read_text(errors="replace")[-3000:]
            except Exception as error:  # noqa: BLE001 - a broken step is a finding; the next one runs
                step.update(status="failed", error=f"{type(error).__name__}: {error}",
                            traceback=traceback.format_exc(limit=4)[-2000:])
        step["seconds"] = round(time.perf_counter() - start, 2)
        self.report.add(step)

    # --- steps ------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        out = self.work / "snapshot.json"
        proc = self.sub("snapshot", [self.python, str(REPO / "runtime" / "bootstrap.py"), "snapshot", "-o", str(out)])
        if proc.returncode != 0:
            raise StepFailed(f"bootstrap.py snapshot exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
        shutil.copy2(out, self.report.out / "snapshot.json")
        return diff_targets(out, FIXTURE)

    def install(self) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        wheelhouse = self.prepared / "wheelhouse" if self.prepared else None
        if wheelhouse is None:
            if not self.smoke:
                raise StepFailed("no --prepared folder: run `bash scripts/gpu_prepare.sh` on the CPU machine and carry it")
            wheelhouse = make_probe_wheelhouse(self.work / "probe-wheelhouse")
            figures["wheelhouse"] = "probe (smoke: one tiny real wheel)"
        if not (wheelhouse / "bootstrap.py").is_file():
            raise StepFailed(f"{wheelhouse}/bootstrap.py is missing: is {self.prepared} a gpu_prepare.sh folder?")
        cmd = [self.python, str(wheelhouse / "bootstrap.py"), "--wheels", str(wheelhouse), "--json"]
        if self.smoke:
            cmd += ["--target", str(self.site)]  # smoke never installs into the interpreter it runs with
        start = time.perf_counter()
        proc = self.sub("install", cmd, env={**self.env(), "OFFLINEPACK_KAGGLE_ROOT": str(self.work / "no-kaggle")})
        figures["bootstrap_seconds"] = round(time.perf_counter() - start, 2)
        figures["exit_code"] = proc.returncode
        try:
            report = json.loads(proc.stdout)
            packages = report.get("packages", [])
            figures["installed"] = [f"{p['name']} {p.get('version') or ''}".strip() for p in packages if p.get("status") == "installed"]
            figures["decisions"] = {p["name"]: p.get("status") for p in packages}
            install = report.get("install") or {}
            self.bootstrap_path = install.get("pythonpath") or None
            figures["installer"] = install.get("installer")
            figures["install_target"] = install.get("target")
            figures["install_seconds"] = install.get("seconds")
        except (json.JSONDecodeError, TypeError, KeyError):
            figures["stdout_tail"] = proc.stdout[-500:]
        extras = sorted(glob.glob(str(self.prepared / "extras" / "*.whl"))) if self.prepared else []
        if extras:
            start = time.perf_counter()
            pip = self.sub("install", [self.python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                                       "--no-compile", "--disable-pip-version-check", "--target", str(self.extras), *extras],
                           log_name="install-extras")
            figures["extras_seconds"] = round(time.perf_counter() - start, 2)
            figures["extras"] = [Path(w).name.split("-")[0] for w in extras]
            if pip.returncode != 0:
                raise StepFailed(f"pip install of the extras exited {pip.returncode}: {pip.stderr.strip()[-300:]}", figures)
        if proc.returncode == 2:
            raise StepFailed(f"bootstrap.py: not ready (exit 2): {proc.stderr.strip()[-300:]}", figures)
        return figures

    def doctor(self) -> dict[str, Any]:
        cmd = [self.python, "-m", "offlinepack", "doctor", "--require-gpu", "--json", "--output-dir", str(self.work)]
        if self.prepared:
            cmd += ["--wheels", str(self.prepared / "wheelhouse")]
        proc = self.sub("doctor", cmd, env={**self.env(), "OFFLINEPACK_KAGGLE_ROOT": str(self.work / "no-kaggle")})
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise StepFailed(f"doctor exited {proc.returncode} without JSON: {proc.stderr.strip()[-300:]}") from None
        checks = report.get("checks", [])
        figures = {"exit_code": proc.returncode,
                   "failed_checks": [c["name"] for c in checks if c.get("status") == "fail"],
                   "warned_checks": [c["name"] for c in checks if c.get("status") == "warn"],
                   "checks": {c["name"]: f"{c.get('status')}: {c.get('detail')}" for c in checks}}
        if proc.returncode == 2:
            raise StepFailed("doctor --require-gpu: not ready (exit 2): " + "; ".join(
                f"{c['name']}: {c.get('detail')}" for c in checks if c.get("status") == "fail")[:400], figures)
        return figures

    def model(self) -> dict[str, Any]:
        proc = self.sub("model", [self.python, __file__, "--worker", "model", "--work", str(self.work),
                                  "--device", self.device] + (["--smoke"] if self.smoke else []))
        return worker_result(proc, "model")

    def engine(self, name: str) -> dict[str, Any]:
        model = self.work / "model"
        if not (model / "plans.json").is_file():
            raise StepFailed("no model folder (the model step failed)")
        worker = "nnunetv2" if name == "nnunetv2" else "offlinepack"
        cmd = [self.python, __file__, "--worker", worker, "--work", str(self.work), "--device", self.device,
               "--result", str(self.work / f"{name}.npy")]
        if name == "offlinepack-eager":
            cmd += ["--compile", "off"]
        if name == "offlinepack-cap15":
            cmd += ["--cap-gb", "15"]
        proc = self.sub(name, cmd, env=self.env(stub=worker == "nnunetv2"))
        figures = worker_result(proc, name)
        model_figures = (self.report.step("model") or {}).get("figures", {})
        flop = model_figures.get("forward_tflop")
        passes = model_figures.get("forward_passes")
        if flop and passes and figures.get("sec_per_volume"):
            figures["tflops"] = round(flop * passes / figures["sec_per_volume"], 1)
        reference = self.work / "nnunetv2.npy"
        if name != "nnunetv2" and reference.is_file():
            figures.update(agreement(self.work / f"{name}.npy", reference))
            base = ((self.report.step("nnunetv2") or {}).get("figures") or {}).get("sec_per_volume")
            if base and figures.get("sec_per_volume"):
                figures["speedup_vs_nnunetv2"] = round(base / figures["sec_per_volume"], 2)
        return figures

    def pytest_gpu(self) -> dict[str, Any]:
        files = sorted(str(p) for p in (REPO / "tests").glob("test_*.py") if "mark.gpu" in p.read_text(encoding="utf-8"))
        if not files:
            raise StepFailed("no test file has a gpu marker")
        cmd = [self.python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
               "--junitxml", str(self.work / "pytest-gpu.xml"), *files]
        proc = self.sub("pytest-gpu", cmd, env=self.env(stub=True), cwd=REPO)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        figures: dict[str, Any] = {"exit_code": proc.returncode, "summary": tail, "files": [Path(f).name for f in files]}
        for count, word in re.findall(r"(\d+) (passed|failed|skipped|error|errors|deselected)", tail):
            figures[word.rstrip("s") if word.startswith("error") else word] = int(count)
        if proc.returncode != 0:
            raise StepFailed(f"pytest -m gpu exited {proc.returncode}: {tail}", figures)
        return figures

    def run(self) -> dict[str, Any]:
        model = self.work / "model"
        if not (model / "plans.json").is_file():
            raise StepFailed("no model folder (the model step failed)")
        size = SMOKE_SHAPE[0] if self.smoke else 320
        images = self.work / "competition" / "test_images"
        from offlinepack.demo.sample import write_lzw_tiff
        from bench_infer import make_volume

        images.mkdir(parents=True, exist_ok=True)
        base = make_volume((size,) * 3, seed=3)
        for i in range(2):
            write_lzw_tiff(base if i == 0 else base[::-1].copy(), images / f"{1000 + i}.tif")
        output = self.work / "run" / "submission.zip"
        cmd = [self.python, "-m", "offlinepack", "run", "--model", str(model), "--input", str(images.parent),
               "-o", str(output), "--json", "--overwrite"]
        env = {**self.env(), "OFFLINEPACK_KAGGLE_ROOT": str(self.work / "no-kaggle")}
        if self.prepared:
            env["OFFLINEPACK_WHEELS"] = str(self.prepared / "wheelhouse")
        start = time.perf_counter()
        proc = self.sub("run", cmd, env=env)
        wall = time.perf_counter() - start
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise StepFailed(f"offlinepack run exited {proc.returncode} without JSON: {proc.stderr.strip()[-400:]}") from None
        seconds = report.get("seconds", {})
        volumes = report.get("volumes", [])
        stages: dict[str, float] = {}
        for volume in volumes:
            for stage, value in volume.get("seconds", {}).items():
                stages[stage] = round(stages.get(stage, 0.0) + value, 3)
        inference = stages.get("inference", 0.0)
        total = seconds.get("total") or wall
        figures = {
            "exit_code": proc.returncode, "volumes": len(volumes), "volume": [size] * 3,
            "process_wall_s": round(wall, 2), "run_seconds": seconds, "stage_seconds_summed": stages,
            "inference_s_per_volume": round(inference / max(len(volumes), 1), 2),
            "non_inference_share": round(1 - inference / total, 4) if total else None,
            "non_inference_share_excluding_setup": round(
                1 - inference / (total - seconds.get("engine_setup", 0.0)), 4) if total > seconds.get("engine_setup", 0.0) else None,
            "readers": sorted({(v.get("input") or {}).get("reader") for v in volumes} - {None}),
        }
        ledger = output.parent / "offlinepack-runs.jsonl"
        if ledger.is_file():
            record = json.loads(ledger.read_text().strip().splitlines()[-1])
            engine = record.get("engine") or {}
            figures["compile"] = engine.get("compile")
            figures["batch"] = engine.get("batch_size_used")
            figures["compile_seconds"] = (engine.get("compile") or {}).get("seconds")
        if proc.returncode != 0:
            raise StepFailed(f"offlinepack run exited {proc.returncode}: {proc.stderr.strip()[-300:]}", figures)
        return figures

    def goals(self) -> None:
        def fig(step: str, key: str) -> Any:
            return ((self.report.step(step) or {}).get("figures") or {}).get(key)

        goals: dict[str, Any] = {}
        speed = fig("offlinepack", "speedup_vs_nnunetv2")
        if speed is not None:
            goals["default >= 2x nnunetv2"] = f"{speed}x: {'met' if speed >= 2 else 'NOT met'}"
        agree = fig("offlinepack", "mask_agreement")
        if agree is not None:
            goals["mask agreement >= 99.9 %"] = f"{agree:.5%}: {'met' if agree >= 0.999 else 'NOT met'}"
        tflops = fig("offlinepack", "tflops")
        if tflops is not None:
            goals["moonshot >= 300 TFLOP/s"] = f"{tflops}: {'met' if tflops >= 300 else 'not met'}"
        cap = fig("offlinepack-cap15", "speedup_vs_nnunetv2")
        if cap is not None:
            peak = fig("nnunetv2", "peak_gib")
            goals["15 GB cap >= 1.5x nnunetv2"] = (f"{cap}x vs nnunetv2 uncapped (its peak {peak} GiB"
                                                     f"{' < 15 GB: a cap would not slow it' if peak and peak < 13.9 else ''}):"
                                                     f" {'met' if cap >= 1.5 else 'NOT met'}")
        share = fig("run", "non_inference_share")
        if share is not None:
            goals["run non-inference share <= 10 %"] = f"{share:.1%}: {'met' if share <= 0.10 else 'NOT met'}"
        goals["whole script <= 8 min"] = f"{time.perf_counter() - self.report.started:.0f} s"
        self.report.data["goals"] = goals
        self.report.flush()

    def all(self) -> None:
        only = set(self.args.steps.split(",")) if self.args.steps else None
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("snapshot", self.snapshot), ("install", self.install), ("doctor", self.doctor), ("model", self.model),
            ("nnunetv2", lambda: self.engine("nnunetv2")), ("offlinepack", lambda: self.engine("offlinepack")),
            ("offlinepack-eager", lambda: self.engine("offlinepack-eager")), ("run", self.run),
            ("offlinepack-cap15", lambda: self.engine("offlinepack-cap15")), ("pytest-gpu", self.pytest_gpu),
        ]
        for name, action in plan:
            if only is None or name in only:
                self.run_step(name, action)
        self.goals()


# --- helpers ---------------------------------------------------------------------------------------
def machine_facts(smoke: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {"python": platform.python_version(), "executable": sys.executable,
                             "cpu_count": os.cpu_count(), "platform": platform.platform()}
    try:
        import torch

        facts["torch"] = torch.__version__
        if torch.cuda.is_available():
            facts.update(gpu=torch.cuda.get_device_name(0), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                         gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / GiB, 1))
    except Exception as error:  # noqa: BLE001 - the snapshot and doctor steps say more
        facts["torch"] = f"not importable: {error}"
    if shutil.which("nvidia-smi") and not smoke:
        try:
            facts["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                             capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return facts


def diff_targets(snapshot: Path, fixture: Path) -> dict[str, Any]:
    from offlinepack.kernel_target.model import load_target_file
    from offlinepack.kernel_target.resolve import resolve_target

    now = load_target_file(snapshot)
    then = resolve_target(fixture)
    a, b = then.installed_by_key(), now.installed_by_key()
    changed = {k: [a[k].version, b[k].version] for k in sorted(set(a) & set(b)) if a[k].version != b[k].version}
    return {
        "python": now.python_version, "fixture_python": then.python_version,
        "glibc": now.libc_version, "fixture_glibc": then.libc_version,
        "distributions": len(now.installed), "fixture_distributions": len(then.installed),
        "added": sorted(set(b) - set(a)), "removed": sorted(set(a) - set(b)), "changed": changed,
        "tags_identical": list(now.tags) == list(then.tags), "first_tag": now.tags[0] if now.tags else None,
        "markers_changed": {k: [then.markers.get(k), v] for k, v in now.markers.items() if then.markers.get(k) != v},
    }


def make_probe_wheelhouse(folder: Path) -> Path:
    """Smoke only: a real wheelhouse (manifest, pylock-free contract, bootstrap.py) with one tiny real
    wheel, so the install step runs bootstrap.py for real on CPU without the prepared folder."""
    from tests.support.wheels import make_wheel
    from tests.support.kernels import write_wheelhouse

    built = folder.parent / "probe-wheels"
    built.mkdir(parents=True, exist_ok=True)
    wheel = make_wheel(built, "gpu-check-probe", "1.0")
    return write_wheelhouse(folder, [{"wheel": wheel}], python_version=platform.python_version())


def worker_result(proc: subprocess.CompletedProcess, name: str) -> dict[str, Any]:
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    try:
        figures = json.loads(last)
    except json.JSONDecodeError:
        figures = None
    if proc.returncode != 0 or not isinstance(figures, dict):
        raise StepFailed(f"{name} worker exited {proc.returncode}: " + " | ".join(proc.stderr.strip().splitlines()[-4:])[-600:])
    return figures


def agreement(ours_path: Path, reference_path: Path) -> dict[str, Any]:
    import numpy as np

    if not ours_path.is_file():
        return {}
    ours = np.load(ours_path).astype(np.float32)
    reference = np.load(reference_path).astype(np.float32)
    if ours.shape != reference.shape:
        return {"mask_agreement": None, "shape_mismatch": [list(ours.shape), list(reference.shape)]}
    diff = np.abs(ours - reference)
    return {"mask_agreement": round(float(np.mean((ours > 0.5) == (reference > 0.5))), 6),
            "max_abs_diff": round(float(diff.max()), 4), "p999_abs_diff": round(float(np.percentile(diff, 99.9)), 4),
            "foreground_fraction": round(float(np.mean(ours > 0.5)), 4)}


# --- workers: each runs in its own process (clean peak-memory counters, its own timeout) --------------
def worker_model(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from bench_infer import make_volume, write_model
    from offlinepack.inference.tiling import mirror_combinations, tile_origins
    from offlinepack.models.loader import load_model

    work = Path(args.work)
    start = time.perf_counter()
    write_model(work / "model", args.smoke)
    written = time.perf_counter() - start
    shape = SMOKE_SHAPE if args.smoke else (320,) * 3
    np.save(work / "volume.npy", make_volume(shape, seed=1))
    model = load_model(work / "model")
    net = model.networks[0].to(args.device).eval()
    x = torch.zeros((1, 1, *model.patch_size), device=args.device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        net(x)
    flops = float(counter.get_total_flops())
    passes = len(tile_origins(shape, model.patch_size, 0.5)) * len(mirror_combinations((0, 1, 2)))
    params = sum(p.numel() for p in net.parameters())
    return {"model_seconds": round(written, 2), "parameters_m": round(params / 1e6, 1),
            "patch": list(model.patch_size), "volume": list(shape), "forward_tflop": round(flops / 1e12, 4),
            "forward_passes": passes}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / GiB, 2) if device.startswith("cuda") else None


def worker_offlinepack(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    import numpy as np
    import torch

    from offlinepack.inference import InferenceSettings, build_engine

    work = Path(args.work)
    if args.cap_gb and args.device.startswith("cuda"):
        torch.cuda.set_per_process_memory_fraction(args.cap_gb * GiB / torch.cuda.get_device_properties(0).total_memory)
    volume = np.load(work / "volume.npy")
    compile_setting = {"auto": None, "on": True, "off": False}[args.compile]
    settings = InferenceSettings(device=args.device, precision="fp16", step_size=0.5, mirror_axes=(0, 1, 2),
                                 compile=compile_setting)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        engine = build_engine([work / "model"], settings=settings, compile_cache=Path(os.environ.get(
            "TORCHINDUCTOR_CACHE_DIR", str(work / "inductor-cache"))))
    setup = time.perf_counter() - start
    start = time.perf_counter()
    engine.predict(volume, "warm-up")
    _sync(args.device)
    warm = time.perf_counter() - start
    _peak_reset(args.device)
    start = time.perf_counter()
    out = engine.predict(volume, "timed")
    _sync(args.device)
    sec = time.perf_counter() - start
    np.save(args.result, out)
    info = engine.describe()
    return {"sec_per_volume": round(sec, 3), "warm_up_volume_s": round(warm, 3), "engine_setup_s": round(setup, 2),
            "compile_seconds": info["compile"]["seconds"], "compile": info["compile"],
            "batch": info["batch_size_used"], "accumulation": info["accumulation"], "peak_gib": _peak_gib(args.device),
            "cap_gb": args.cap_gb, "precision": info["precision"], "torch": info["torch"], "cudnn": info["cudnn"],
            "warnings": [str(w.message)[:300] for w in caught if "running on CPU" not in str(w.message)]}


def worker_nnunetv2(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from bench_infer import worker_nnunet

    work = Path(args.work)
    volume = np.load(work / "volume.npy")
    start = time.perf_counter()
    out, times, peak, info = worker_nnunet(work / "model", volume, args.device, 1, None)
    np.save(args.result, out)
    return {"sec_per_volume": round(times[0], 3), "warm_up_and_timed_s": round(time.perf_counter() - start, 2),
            "peak_gib": round(peak / GiB, 2) if peak else None, **info}


WORKERS = {"model": worker_model, "offlinepack": worker_offlinepack, "nnunetv2": worker_nnunetv2}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="folder for gpu-check.json + gpu-check.txt (rewritten after each step)")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny network and volume: checks the script")
    parser.add_argument("--prepared", help="gpu_prepare.sh's folder (wheelhouse/ + extras/); default ./gpu-prepared if present")
    parser.add_argument("--budget", type=float, default=None, help="seconds for the whole run [470; smoke 110]")
    parser.add_argument("--steps", help="comma-separated subset of steps (default: all)")
    parser.add_argument("--python", default=sys.executable, help="the machine's Python to check [this one]")
    parser.add_argument("--work", help="scratch folder [a new temporary folder]")
    # internal: one worker in a fresh process
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda:0", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--compile", choices=("auto", "on", "off"), default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--cap-gb", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args), default=str))
        return 0
    if not args.out:
        parser.error("--out DIR is required")
    if args.budget is None:
        args.budget = 110.0 if args.smoke else 470.0
    if args.prepared is None and (REPO / "gpu-prepared" / "wheelhouse").is_dir() and not args.smoke:
        args.prepared = str(REPO / "gpu-prepared")
    checker = Checker(args)
    checker.all()
    print(render_table(checker.report.data), end="")
    failed = [s["name"] for s in checker.report.data["steps"] if s["status"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
