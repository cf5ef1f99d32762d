"""torch, CUDA, GPUs and cuDNN. torch is imported only inside probe_torch(): the doctor probes it, it does not use it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from offlinepack.doctor.model import Check
from offlinepack.units import format_size


@dataclass(frozen=True, slots=True)
class GpuFacts:
    index: int
    name: str
    total_memory: int  # bytes
    capability: tuple[int, int]


@dataclass(frozen=True, slots=True)
class TorchFacts:
    """What the doctor needs to know about torch; a parameter so any machine's facts can be checked."""

    importable: bool
    error: str | None = None
    version: str | None = None
    cuda_build: str | None = None  # torch.version.cuda, "12.8"; None for a CPU build
    cuda_available: bool = False
    driver_cuda: tuple[int, int] | None = None  # the newest CUDA the driver supports
    gpus: tuple[GpuFacts, ...] = ()
    arch_list: tuple[str, ...] = ()  # "sm_75", ...
    cudnn_version: int | None = None  # torch.backends.cudnn.version(), 91002 for 9.10.2
    cuda_error: str | None = None  # CUDA visible but a tiny computation on GPU 0 failed (driver, arch, busy GPU)


def probe_torch() -> TorchFacts:
    try:
        import torch
    except Exception as error:  # noqa: BLE001 - a broken torch (missing libcudart...) is a finding, not a crash
        return TorchFacts(False, error=f"{type(error).__name__}: {error}")
    available = bool(torch.cuda.is_available())
    driver = None
    try:
        raw = int(torch._C._cuda_getDriverVersion())  # 12040 for 12.4; 0 without a driver
        driver = (raw // 1000, raw % 1000 // 10) if raw > 0 else None
    except Exception:  # noqa: BLE001 - private API, absent from CPU builds
        driver = None
    gpus: list[GpuFacts] = []
    arch: tuple[str, ...] = ()
    if available:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            gpus.append(GpuFacts(i, props.name, int(props.total_memory), (props.major, props.minor)))
        arch = tuple(torch.cuda.get_arch_list())
    cuda_error = None
    if available:
        try:  # "available" only means a driver answered: run one small kernel to know the GPU is usable
            float((torch.ones(256, device="cuda:0") * 2).sum().item())
        except Exception as error:  # noqa: BLE001 - e.g. "no kernel image is available for execution"
            cuda_error = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    try:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    except Exception:  # noqa: BLE001
        cudnn = None
    return TorchFacts(True, None, str(torch.__version__), torch.version.cuda, available, driver, tuple(gpus), arch, cudnn,
                      cuda_error)


def cudnn_triplet(version: int) -> tuple[int, int, int]:
    """cuDNN 9 encodes 9.10.2 as 91002; cuDNN 8 encoded 8.9.7 as 8907."""
    if version >= 90000:
        return version // 10000, version // 100 % 100, version % 100
    return version // 1000, version // 100 % 10, version % 100


def known_bad(torch_version: str | None, cudnn_version: int | None) -> list[Check]:
    """Combinations known to hurt 3D U-Net inference (see DOMAIN.md)."""
    found: list[Check] = []
    match = re.match(r"(\d+)\.(\d+)", torch_version or "")
    if match and (int(match[1]), int(match[2])) == (2, 9):
        found.append(Check("torch 2.9 conv3d", "warn",
                           f"torch {torch_version} runs conv3d without cuDNN: several times slower, more memory",
                           "use a kernel image with torch 2.8 or >= 2.10 (Settings > Environment), or expect slow runs"))
    if cudnn_version:
        major, minor, _ = cudnn_triplet(cudnn_version)
        if major == 9 and 8 <= minor <= 10:
            found.append(Check("cudnn bf16 conv3d", "warn",
                               f"cuDNN {'.'.join(map(str, cudnn_triplet(cudnn_version)))} computes bf16 conv3d wrongly",
                               "run with --precision fp16 (precision auto never picks bf16 on this cuDNN)"))
    return found


def gpu_checks(facts: TorchFacts, require_gpu: bool) -> list[Check]:
    if not facts.importable:
        return [Check("torch", "fail", f"torch does not import: {facts.error}",
                      "Kaggle kernels ship torch: do not reinstall it; elsewhere `pip install torch`")]
    checks = [Check("torch", "ok", f"torch {facts.version}, " + (f"CUDA {facts.cuda_build} build" if facts.cuda_build else "CPU build"))]
    if facts.cuda_build and facts.driver_cuda:
        build = tuple(int(x) for x in facts.cuda_build.split(".")[:2])
        driver = ".".join(map(str, facts.driver_cuda))
        if build[0] > facts.driver_cuda[0]:
            checks.append(Check("cuda driver", "fail", f"torch is built for CUDA {facts.cuda_build}; the driver supports "
                                f"only up to {driver}", "use the kernel's own torch, or a torch built for CUDA <= " + driver))
        elif build > facts.driver_cuda:
            checks.append(Check("cuda driver", "warn", f"torch built for CUDA {facts.cuda_build}, driver supports {driver} "
                                "(minor-version compatibility; some kernels may be missing)", "prefer the kernel's torch"))
        else:
            checks.append(Check("cuda driver", "ok", f"driver supports CUDA {driver} >= build {facts.cuda_build}"))
    if not facts.cuda_available:
        status = "fail" if require_gpu else "warn"
        checks.append(Check("cuda", status, "CUDA is not available: inference runs on the CPU (very slow for real models)",
                            "turn on a GPU accelerator in the notebook settings" if facts.cuda_build else
                            "this torch is a CPU build; a GPU kernel has a CUDA build"))
    elif facts.cuda_error:
        checks.append(Check("cuda", "fail" if require_gpu else "warn",
                            f"{len(facts.gpus)} GPU(s) visible, but a small computation on GPU 0 failed: {facts.cuda_error}",
                            "check `nvidia-smi` (driver, other processes); use the kernel's own torch build"))
    else:
        checks.append(Check("cuda", "ok", f"{len(facts.gpus)} GPU(s) visible, a test computation ran on GPU 0"))
    supported = [int(a[3:]) for a in facts.arch_list if re.fullmatch(r"sm_\d+", a)]
    for gpu in facts.gpus:
        cc = gpu.capability[0] * 10 + gpu.capability[1]
        detail = f"{gpu.name}, {format_size(gpu.total_memory)}, sm_{cc}"
        if supported and cc < min(supported):
            checks.append(Check(f"gpu {gpu.index}", "fail", f"{detail}: this torch has no kernels for sm_{cc} "
                                f"(oldest: sm_{min(supported)})", "pick a newer GPU (T4 or better) in the notebook settings"))
        else:
            bf16 = "" if gpu.capability >= (8, 0) else "; no native bf16, fp16 is used"
            checks.append(Check(f"gpu {gpu.index}", "ok", detail + bf16))
    if facts.cuda_available:
        if facts.cudnn_version:
            checks.append(Check("cudnn", "ok", "cuDNN " + ".".join(map(str, cudnn_triplet(facts.cudnn_version)))))
        else:
            checks.append(Check("cudnn", "warn", "cuDNN is not available to torch: 3D convolutions are much slower",
                                "use the kernel's own torch build"))
    checks += known_bad(facts.version, facts.cudnn_version)
    return checks
