"""Inference settings and the decisions made from host facts (devices, precision, batch, memory).

The decision functions are pure: host facts (CUDA device count, compute capability, free bytes) are
parameters, so tests can be any machine.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields

from offlinepack.errors import OfflinepackError

PRECISIONS = ("auto", "fp16", "bf16", "fp32")
MAX_AUTO_BATCH = 8  # measured on H100 (DOMAIN.md): batch 8 fp16 fastest; more only costs memory
MEMORY_MARGIN = 0.10  # keep 10 % of free memory for cuDNN workspaces and fragmentation


class InferenceError(OfflinepackError):
    """Inference cannot run or produced unusable output."""


@dataclass(frozen=True)
class InferenceSettings:
    """How to run: tile overlap, TTA flips (network axis order), batch (None: from free memory),
    precision ("auto": fp16 on CUDA, fp32 on CPU), device ("auto": every visible GPU, else CPU),
    compile (torch.compile the networks; None: on CUDA when this torch supports it, off on CPU;
    False: never; True: also on CPU), compile_backend (torch.compile's backend; tests use a failing one)."""

    # metadata "toml": the types run.toml's [inference] and the run flags accept (a field without it is
    # not a user setting: compile_backend is for tests)
    step_size: float = field(default=0.5, metadata={"toml": (float, int)})
    mirror_axes: tuple[int, ...] = field(default=(0, 1, 2), metadata={"toml": (list, tuple)})
    batch_size: int | None = field(default=None, metadata={"toml": (int,)})
    precision: str = field(default="auto", metadata={"toml": (str,)})
    device: str = field(default="auto", metadata={"toml": (str,)})
    compile: bool | None = field(default=None, metadata={"toml": (bool,)})
    compile_backend: str = "inductor"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mirror_axes", tuple(int(a) for a in self.mirror_axes))
        problems = []
        if not 0 < self.step_size <= 1:
            problems.append(f"step_size must be in (0, 1], got {self.step_size}")
        if any(a not in (0, 1, 2) for a in self.mirror_axes) or len(set(self.mirror_axes)) != len(self.mirror_axes):
            problems.append(f"mirror_axes must be distinct axes among 0, 1, 2, got {list(self.mirror_axes)}")
        if self.batch_size is not None and self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.compile not in (None, True, False):
            problems.append(f"compile must be true, false or unset (auto), got {self.compile!r}")
        if not (self.device in ("auto", "cpu", "cuda") or (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            problems.append(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if problems:
            raise InferenceError("invalid inference settings", problems=problems)


def setting_types() -> dict[str, tuple[type, ...]]:
    """The user settings (run.toml [inference] keys, in declaration order) and the types each accepts."""
    return {f.name: f.metadata["toml"] for f in fields(InferenceSettings) if "toml" in f.metadata}


def resolve_devices(device: str, cuda_count: int) -> tuple[str, ...]:
    """Which devices to use: "auto" -> every visible GPU, else CPU; "cuda" -> every GPU."""
    if device == "cpu" or (device == "auto" and cuda_count == 0):
        return ("cpu",)
    if cuda_count == 0:
        raise InferenceError(f"device {device!r} requested but no CUDA GPU is visible", hint="use --device cpu (slow) or run on a GPU machine")
    if device in ("auto", "cuda"):
        return tuple(f"cuda:{i}" for i in range(cuda_count))
    index = int(device[5:])
    if index >= cuda_count:
        raise InferenceError(f"device {device} does not exist (visible GPUs: {cuda_count})")
    return (device,)


def resolve_precision(
    precision: str, device_type: str, capability: tuple[int, int] | None, cudnn_version: int | None = None
) -> tuple[str, str | None]:
    """(precision to use, warning or None). Auto never picks bf16: it measured slower than fp16 on an
    H100, and T4s (compute capability 7.5) have no bf16 at all; cuDNN 9.8-9.10 computed wrong bf16
    conv3d results, so bf16 is refused there. CPU runs fp32."""
    if device_type == "cpu":
        if precision in ("fp16", "bf16"):
            return "fp32", f"{precision} requested on CPU: running fp32 (half-precision 3D convolutions are slow or missing on CPU)"
        return "fp32", None
    if precision == "auto":
        return "fp16", None
    if precision == "bf16" and (capability is None or capability < (8, 0)):
        return "fp16", f"bf16 requested but this GPU (compute capability {capability}) has no native bf16: using fp16"
    if precision == "bf16" and cudnn_version is not None and 90800 <= cudnn_version < 91100:
        return "fp16", f"bf16 requested but cuDNN {cudnn_version} (9.8-9.10) computes wrong bf16 3D convolutions: using fp16"
    return precision, None


def torch_warning(torch_version: str) -> str | None:
    """torch 2.9.x turned cuDNN off for conv3d: 3D networks run several times slower there."""
    if torch_version.startswith("2.9."):
        return f"torch {torch_version} disables cuDNN for 3D convolutions (several times slower, more memory): use torch 2.8 or >= 2.10 if you can"
    return None


# torch.compile (dynamo) supports each Python from this torch on; older pairs fail at the first call
COMPILE_MIN_TORCH = {(3, 12): (2, 4), (3, 13): (2, 6), (3, 14): (2, 9)}
COMPILE_MIN_TORCH_DEFAULT = (2, 2)


def _version_tuple(version: str) -> tuple[int, int]:
    parts = version.split("+")[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def resolve_compile(
    requested: bool | None,
    device_type: str,
    torch_version: str,
    python_version: tuple[int, int] = sys.version_info[:2],
    has_triton: bool = True,
) -> tuple[bool, str]:
    """(compile or not, why). Auto compiles on CUDA only: there it measured 1.43x faster than the same
    batched forwards eager (H100, DOMAIN.md); on CPU it only adds minutes of compilation to tests and
    small runs. An explicit True is honoured on CPU too (inductor's C++ backend)."""
    if requested is False:
        return False, "off: compile = false (--no-compile)"
    if requested is None and device_type != "cuda":
        return False, "off: auto compiles on CUDA only (CPU runs eager)"
    minimum = COMPILE_MIN_TORCH.get(tuple(python_version), COMPILE_MIN_TORCH_DEFAULT)
    if _version_tuple(torch_version) < minimum:
        py = ".".join(map(str, python_version))
        return False, (f"off: torch {torch_version} cannot compile on Python {py} "
                       f"(needs torch >= {'.'.join(map(str, minimum))}); running eager")
    if device_type == "cuda" and not has_triton:
        return False, "off: triton is not installed (torch.compile's CUDA backend needs it); running eager"
    return True, "on: auto (CUDA)" if requested is None else "on: compile = true"


def accumulator_bytes(volume_shape: tuple[int, ...], patch_size: tuple[int, ...], num_outputs: int) -> int:
    """Device memory for one volume's sums: logits + weights (fp32) over the padded volume, the
    normalised input and its padded copy, and the softmax's output at the end."""
    voxels = math.prod(max(v, p) for v, p in zip(volume_shape, patch_size))
    return voxels * 4 * (2 * num_outputs + 3)


@dataclass(frozen=True)
class MemoryPlan:
    batch_size: int
    accumulate_on: str  # "device" or "host"


def plan_memory(
    free_bytes: int, per_sample_bytes: int, accumulator: int, max_batch: int = MAX_AUTO_BATCH
) -> MemoryPlan:
    """Largest batch that fits next to the accumulator on the device; when no batch fits that way,
    sums go to host memory (slower, but the volume still runs). Batch is at least 1: the sliding window's
    out-of-memory handling has the last word."""
    usable = int(free_bytes * (1 - MEMORY_MARGIN))
    per_sample = max(per_sample_bytes, 1)
    on_device = (usable - accumulator) // per_sample
    if on_device >= 1:
        return MemoryPlan(batch_size=int(min(on_device, max_batch)), accumulate_on="device")
    return MemoryPlan(batch_size=int(max(1, min(usable // per_sample, max_batch))), accumulate_on="host")


def cpu_batch_size(patch_size: tuple[int, ...]) -> int:
    """CPU gains little from batching; small patches get a few per pass to cut Python overhead."""
    return max(1, min(4, (1 << 21) // max(math.prod(patch_size), 1)))
